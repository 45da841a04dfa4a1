"""Rule report_training: one model's loss and validation MAP@5 per epoch."""

import pandas as pd

from whaleid.io.logs import log_to_file
from whaleid.report.figures import training_figure

log = log_to_file(snakemake.log[0])
history = pd.read_csv(snakemake.input.history)
log.info("%s: %d epochs, columns %s", snakemake.wildcards.model, len(history), ", ".join(history.columns))
training_figure(history, snakemake.wildcards.model, snakemake.output.figure)
