"""Rule embed: the embedding of every photo of one split (train: the catalogue; test: queries)."""

from whaleid.devices import start_tensorflow_job
from whaleid.files import write_bytes
from whaleid.logs import Progress, log_to_file

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads)

from whaleid.embedding import embed_array, load_embedder  # noqa: E402

embed_array(
    load_embedder(snakemake.input.model),
    snakemake.input.array,
    snakemake.output.embeddings,
    batch_size=snakemake.params.batch_size,
    views=snakemake.params.views,
    chunk_size=snakemake.params.chunk_size,
    progress=Progress(log, f"embedded {snakemake.wildcards.split}"),
)
# Row i of the embeddings is row i of the array embedded: the same index names both.
with open(snakemake.input.index, "rb") as index:
    write_bytes(index.read(), snakemake.output.index)
