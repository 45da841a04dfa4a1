"""Rule chosen_submission: copy the submission of the method named by `submit`, or of the best on validation."""

from pathlib import Path

import pandas as pd

from whaleid.evaluation.scoring import best_method
from whaleid.io.files import write_bytes, write_text
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
methods = snakemake.params.methods
if snakemake.input.scores:
    method = best_method(pd.read_csv(snakemake.input.scores), methods)
    log.info("%s has the best validation MAP@5 of %s", method, ", ".join(methods))
else:
    method = methods[0]
source = snakemake.input.submissions[methods.index(method)]
write_bytes(Path(source).read_bytes(), snakemake.output.submission)
write_text(method + "\n", snakemake.output.method)
log.info("copied %s to %s", source, snakemake.output.submission)
