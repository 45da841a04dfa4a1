"""Rule classifier_identify: top-5 ids per image, new_whale threshold chosen on validation."""

from whaleid.io.logs import log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job)

from whaleid.methods.classifier import identify  # noqa: E402

i, p, o = snakemake.input, snakemake.params, snakemake.output
answers = identify(i.model, i.labels, i.train_array, i.train_index, i.test_array, i.test_index, i.split, i.manifest,
                   phash_distances=p.phash_distances, thresholds=p.thresholds, batch_size=p.batch_size,
                   reviewed=i.reviewed[0] if i.reviewed else None, encounters=i.encounters[0] if i.encounters else None)
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
answers.write(o.validation, o.test, o.threshold_curve)
