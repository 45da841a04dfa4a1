"""Rule add_to_catalogue: embed new labelled photos and add them to the catalogue, no retraining."""

from whaleid.devices import start_tensorflow_job
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, snakemake.threads)

from whaleid.embedding import add_photos_to_catalogue  # noqa: E402

p = snakemake.params
add_photos_to_catalogue(
    snakemake.input.labels[0],
    snakemake.input.images[0],
    snakemake.input.model,
    images_out=snakemake.output.images,
    embeddings_out=snakemake.output.embeddings,
    index_out=snakemake.output.index,
    rejected_out=snakemake.output.rejected,
    input_kind=p.input_kind,
    size=p.size,
    max_pixels=p.max_pixels,
    batch_size=p.batch_size,
    views=p.views,
    chunk_size=p.chunk_size,
    n_jobs=snakemake.threads,
)
