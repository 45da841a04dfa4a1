"""Rule train_embedding: a sub-center ArcFace embedding of the fit photos' individuals."""

from whaleid.devices import start_tensorflow_job
from whaleid.logs import log_to_file
from whaleid.ranking import threshold_grid

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads, snakemake.params.keras_home)

from whaleid.embedding import train_embedding  # noqa: E402

p = snakemake.params
train_embedding(
    snakemake.input.array,
    snakemake.input.index,
    snakemake.input.split,
    snakemake.output.model,
    snakemake.output.history,
    p.backup_dir,
    backbone=p.backbone,
    weights=p.weights,
    input_kind=p.input_kind,
    input_size=p.input_size,
    width=p.width,
    embedding_size=p.embedding_size,
    dropout=p.dropout,
    sub_centers=p.sub_centers,
    margin=p.margin,
    scale=p.scale,
    epochs=p.epochs,
    learning_rate=p.learning_rate,
    warmup_epochs=p.warmup_epochs,
    batch_size=p.batch_size,
    balance_power=p.balance_power,
    augment=p.augment,
    flip_as_new_identity=p.flip_as_new_identity,
    aggregate=p.aggregate,
    top_k=p.top_k,
    thresholds=threshold_grid(**p.threshold_grid),
    mixed_precision=p.mixed_precision,
    seed=p.seed,
)
