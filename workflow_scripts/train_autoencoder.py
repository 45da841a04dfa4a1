"""Rule train_autoencoder: train the published autoencoder on the preprocessed train and test images."""

import numpy as np

from whaleid.devices import start_tensorflow_job
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads)

from whaleid.autoencoder import save_reconstruction_png, train_autoencoder  # noqa: E402

model = train_autoencoder(
    snakemake.input.caches,
    snakemake.output.model,
    snakemake.output.history,
    snakemake.params.backup_dir,
    epochs=snakemake.params.epochs,
    batch_size=snakemake.params.batch_size,
    learning_rate=snakemake.params.learning_rate,
    optimizer=snakemake.params.optimizer,
    validation_fraction=snakemake.params.validation_fraction,
    augment=snakemake.params.augment,
    flip=snakemake.params.flip,
    mixed_precision=snakemake.params.mixed_precision,
    seed=snakemake.params.seed,
)
examples = np.load(snakemake.input.caches[0], mmap_mode="r")[:4]
save_reconstruction_png(model, examples, snakemake.output.reconstructions)
