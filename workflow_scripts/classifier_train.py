"""Rule classifier_train: transfer learning on the codes (or images) of the fit split."""

from whaleid.io.logs import log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job
from whaleid.settings import ClassifierSettings

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job, keras_home=snakemake.params.keras_home)

from whaleid.methods.classifier import train_classifier  # noqa: E402

i, o = snakemake.input, snakemake.output
train_classifier(i.array, i.index, i.split, o.model, o.labels, o.history, snakemake.params.backup_dir,
                 ClassifierSettings(**snakemake.params.settings))
