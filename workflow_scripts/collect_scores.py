"""Rule collect_scores: every method's scores in one long table, and the side-by-side comparison."""

import pandas as pd

from whaleid.evaluation.scoring import comparison_table
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
scores = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
comparison = comparison_table(scores)
log.info("\n%s", comparison.to_string(index=False))
write_csv(scores, snakemake.output.scores)
write_csv(comparison, snakemake.output.comparison)
