"""Rule preprocess: build the cache of square grayscale images for one split."""

from pathlib import Path

import pandas as pd

from whaleid.data.preprocess import build_cache, cache_index
from whaleid.io.files import write_csv
from whaleid.io.logs import Progress, log_to_file

log = log_to_file(snakemake.log[0])
split = snakemake.wildcards.split
index = cache_index(pd.read_csv(snakemake.input.manifest, dtype={"id": str}, keep_default_na=False), split)
build_cache(
    [Path(snakemake.input.images, image) for image in index["image"]],
    snakemake.output.cache,
    size=snakemake.params.size,
    n_jobs=snakemake.threads,
    chunk_size=snakemake.params.chunk_size,
    sizes=list(zip(index["width"], index["height"])),
    progress=Progress(log, f"preprocessed {split}"),
)
write_csv(index, snakemake.output.index)
