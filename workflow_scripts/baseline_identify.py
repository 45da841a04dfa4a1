"""Rule baseline_identify: duplicate matching, then new_whale and the commonest ids."""

from whaleid.identification.search import Queries
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.methods.baseline import identify

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
queries = Queries.from_manifest(read_table(i.manifest), read_table(i.split), i.split,
                                # the test photos a person identified, where decisions were fed back
                                reviewed_csv=i.reviewed[0] if i.reviewed else None,
                                # the data folder's encounters.csv, where it has one
                                encounters_csv=i.encounters[0] if i.encounters else None)
answers = identify(queries, p.max_distance, p.candidates)
log.info("pHash max distance %d; validation MAP@5 by distance:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
answers.write(snakemake.output.validation, snakemake.output.test, snakemake.output.threshold_curve)
