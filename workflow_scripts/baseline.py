"""Rule baseline: duplicate matching, then new_whale and the commonest ids."""

import pandas as pd

from whaleid.baseline import baseline_predictions
from whaleid.files import write_csv
from whaleid.logs import log_to_file
from whaleid.submission import write_predictions

log = log_to_file(snakemake.log[0])
read = dict(dtype={"id": str, "truth": str}, keep_default_na=False)
validation, test, curve, chosen = baseline_predictions(
    pd.read_csv(snakemake.input.manifest, **read),
    pd.read_csv(snakemake.input.split, **read),
    snakemake.params.max_distance,
    snakemake.params.candidates,
)
log.info("pHash max distance %d; validation MAP@5 by distance:\n%s", chosen, curve.to_string(index=False))
write_csv(curve, snakemake.output.threshold_curve)
write_predictions(snakemake.output.validation, validation["image"], validation["answers"])
write_predictions(snakemake.output.test, test["image"], test["answers"])
