"""Rule local_shortlist_recall: how often the shortlist holds the right individual, by its catalogue photos."""

from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.recall import splits_recall

log = log_to_file(snakemake.log[0])
i = snakemake.input
table = splits_recall(i.validation_shortlists, i.test_shortlists, i.split, i.test_truth[0] if i.test_truth else None)
log.info("\n%s", table.to_string(index=False))
write_csv(table, snakemake.output.recall)
