"""Rule metric_learning_train: a sub-center ArcFace embedding of the fit photos' individuals."""

from whaleid.io.logs import log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job
from whaleid.settings import MetricLearningSettings

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job, keras_home=snakemake.params.keras_home)

from whaleid.methods.metric_learning.model import train_embedding  # noqa: E402

i, o = snakemake.input, snakemake.output
train_embedding(i.array, i.index, i.split, o.model, o.history, snakemake.params.backup_dir,
                MetricLearningSettings(**snakemake.params.settings))
