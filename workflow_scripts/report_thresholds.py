"""Rule report_thresholds: one method's validation MAP@5 against the setting it chose."""

import pandas as pd

from whaleid.io.logs import log_to_file
from whaleid.report.figures import threshold_figure

log = log_to_file(snakemake.log[0])
threshold_figure(pd.read_csv(snakemake.input.curve), snakemake.wildcards.method, snakemake.output.figure)
