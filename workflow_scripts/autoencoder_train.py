"""Rule autoencoder_train: train the published autoencoder on the preprocessed train and test images."""

import numpy as np

from whaleid.io.logs import log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job
from whaleid.settings import AutoencoderSettings

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job)

from whaleid.learning.autoencoder import save_reconstruction_png, train_autoencoder  # noqa: E402

o = snakemake.output
model = train_autoencoder(snakemake.input.caches, o.model, o.history, snakemake.params.backup_dir,
                          AutoencoderSettings(**snakemake.params.settings))
examples = np.load(snakemake.input.caches[0], mmap_mode="r")[:4]
save_reconstruction_png(model, examples, o.reconstructions)
