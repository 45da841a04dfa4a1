"""Rule report_calibration: the local method's reliability diagram, and "new individual" precision and
recall against the threshold, on validation."""

from whaleid.calibration import first_ranked
from whaleid.files import write_csv
from whaleid.logs import log_to_file
from whaleid.report_figures import calibration_figure
from whaleid.tables import read_table

log = log_to_file(snakemake.log[0])
i, o = snakemake.input, snakemake.output
split = read_table(i.split)
validation = split[split["subset"] == "validation"]
first = first_ranked(read_table(i.shortlists), dict(zip(validation["image"], validation["truth"])))
curve = read_table(i.curve)
threshold = float(curve.loc[curve["chosen"].str.lower() == "true", "threshold"].iloc[0])
pairs = read_table(i.pairs).astype({"predicted": float, "observed": float})
table = calibration_figure(first, pairs, threshold, "local", o.figure)
log.info("new individual on validation, by threshold:\n%s", table.to_string(index=False))
write_csv(table, o.table)
