"""Rule report_calibration: a calibrated method's reliability diagram, and "new individual" precision
and recall against the threshold, on validation."""

import pandas as pd

from whaleid.identification.calibration import first_ranked
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.report.figures import calibration_figure
from whaleid.review.evidence import chosen_threshold

log = log_to_file(snakemake.log[0])
i, o = snakemake.input, snakemake.output
split = read_table(i.split)
validation = split[split["subset"] == "validation"]
first = first_ranked(read_table(i.candidates), dict(zip(validation["image"], validation["truth"])))
# the local method's verifier also says how its held-out training pairs fared; fused has none
pairs = (read_table(i.pairs).astype({"predicted": float, "observed": float}) if "pairs" in i.keys()
         else pd.DataFrame(columns=["predicted", "observed"]))
table = calibration_figure(first, pairs, chosen_threshold(i.curve), snakemake.wildcards.method, o.figure)
log.info("new individual on validation, by threshold:\n%s", table.to_string(index=False))
write_csv(table, o.table)
