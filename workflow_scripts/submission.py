"""Rule submission: a method's test predictions as a checked Kaggle submission."""

import pandas as pd

from whaleid.evaluation.submission import complete_submission, read_predictions, write_predictions
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
read = dict(dtype={"id": str, "row": "Int64"}, keep_default_na=False)
images, answers, filled = complete_submission(
    read_predictions(snakemake.input.test),
    pd.read_csv(snakemake.input.manifest, **read),
    pd.read_csv(snakemake.input.rejected, **read),
)
for image in filled:
    log.warning("%s could not be read; answered new_whale and the commonest ids", image)
write_predictions(snakemake.output.submission, images, answers, expected_images=images)
log.info("%d test images written to %s", len(images), snakemake.output.submission)
