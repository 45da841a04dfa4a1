"""Rule train_classifier: transfer learning on the codes (or images) of the fit split."""

from whaleid.devices import start_tensorflow_job
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads, snakemake.params.keras_home)

from whaleid.classifier import train_classifier  # noqa: E402

p = snakemake.params
train_classifier(
    snakemake.input.array,
    snakemake.input.index,
    snakemake.input.split,
    snakemake.output.model,
    snakemake.output.labels,
    snakemake.output.history,
    p.backup_dir,
    backbone=p.backbone,
    weights=p.weights,
    input_kind=p.input_kind,
    input_size=p.input_size,
    head_epochs=p.head_epochs,
    head_learning_rate=p.head_learning_rate,
    fine_tune_epochs=p.fine_tune_epochs,
    fine_tune_learning_rate=p.fine_tune_learning_rate,
    fine_tune_layers=p.fine_tune_layers,
    batch_size=p.batch_size,
    dropout=p.dropout,
    class_weights_method=p.class_weights,
    effective_beta=p.effective_beta,
    new_whale=p.new_whale,
    augment=p.augment,
    flip=p.flip,
    thresholds=p.thresholds,
    mixed_precision=p.mixed_precision,
    seed=p.seed,
)
