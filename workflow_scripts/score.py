"""Rule score: MAP@5 and top-1 of one method on validation, and on test where truth exists."""

from whaleid.evaluation.scoring import score_method
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table

log = log_to_file(snakemake.log[0])
i = snakemake.input
# the individuals a review found new, where decisions were fed back
new_ids = read_table(i.reviewed[0]).query("decision == 'new'")["id"].unique() if i.reviewed else ()
scores = score_method(snakemake.wildcards.method, i.validation, i.split, i.submission,
                      # an empty list where the data folder has no test_truth.csv
                      i.test_truth[0] if i.test_truth else None, new_ids)
log.info("\n%s", scores.to_string(index=False))
write_csv(scores, snakemake.output.scores)
