"""Rule predict_classifier: top-5 ids per image, new_whale threshold chosen on validation."""

from whaleid.devices import start_tensorflow_job
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads)

from whaleid.classifier import predict_classifier  # noqa: E402
from whaleid.files import write_csv  # noqa: E402
from whaleid.submission import write_predictions  # noqa: E402

i = snakemake.input
validation, test, curve, threshold = predict_classifier(
    i.model, i.labels, i.train_array, i.train_index, i.test_array, i.test_index, i.split, i.manifest,
    snakemake.params.phash_distances, snakemake.params.thresholds, batch_size=snakemake.params.batch_size,
)
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", threshold,
         curve.to_string(index=False))
write_csv(curve, snakemake.output.threshold_curve)
write_predictions(snakemake.output.validation, validation["image"], validation["answers"])
write_predictions(snakemake.output.test, test["image"], test["answers"])
