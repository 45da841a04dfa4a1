"""Rule metric_learning_additions: embed new labelled photos for the test catalogue, no retraining."""

from whaleid.io.logs import log_to_file
from whaleid.learning.tensorflow_runtime import start_tensorflow_job

log = log_to_file(snakemake.log[0])
lease = start_tensorflow_job(snakemake.resources.gpu, **snakemake.params.job)

from whaleid.methods.metric_learning.additions import embed_additions  # noqa: E402

i, p, o = snakemake.input, snakemake.params, snakemake.output
embed_additions(i.labels[0], i.images[0], i.model, images_out=o.squares, embeddings_out=o.embeddings,
                index_out=o.index, rejected_out=o.rejected, input_kind=p.input_kind, size=p.size,
                max_pixels=p.max_pixels, batch_size=p.batch_size, views=p.views, chunk_size=p.chunk_size,
                preprocess_chunk_size=p.preprocess_chunk_size, n_jobs=snakemake.threads)
