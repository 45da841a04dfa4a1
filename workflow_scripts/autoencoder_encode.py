"""Rule autoencoder_encode: the autoencoder's codes of every image of one split, cached for the classifier."""

from whaleid.io.files import write_bytes
from whaleid.io.logs import Progress, log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job)

from whaleid.learning.autoencoder import encode_cache, encoder_from, load_autoencoder  # noqa: E402

encode_cache(encoder_from(load_autoencoder(snakemake.input.model)), snakemake.input.cache, snakemake.output.codes,
             batch_size=snakemake.params.batch_size, chunk_size=snakemake.params.chunk_size,
             progress=Progress(log, f"encoded {snakemake.wildcards.split}"))
# Row i of the codes is row i of the preprocess cache: the same index names both.
with open(snakemake.input.index, "rb") as index:
    write_bytes(index.read(), snakemake.output.index)
