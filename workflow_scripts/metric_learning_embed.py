"""Rule metric_learning_embed: the embedding of every photo of one split (train: the catalogue; test: queries)."""

from whaleid.io.files import write_bytes
from whaleid.io.logs import Progress, log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job)

from whaleid.methods.metric_learning.model import embed_array, load_embedder  # noqa: E402

p = snakemake.params
embed_array(load_embedder(snakemake.input.model), snakemake.input.array, snakemake.output.embeddings,
            batch_size=p.batch_size, views=p.views, chunk_size=p.chunk_size,
            progress=Progress(log, f"embedded {snakemake.wildcards.split}"))
# Row i of the embeddings is row i of the array embedded: the same index names both.
with open(snakemake.input.index, "rb") as index:
    write_bytes(index.read(), snakemake.output.index)
