"""Rule collect_scores: every method's scores in one table."""

import pandas as pd

from whaleid.files import write_csv
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
scores = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
log.info("\n%s", scores.to_string(index=False))
write_csv(scores, snakemake.output.scores)
