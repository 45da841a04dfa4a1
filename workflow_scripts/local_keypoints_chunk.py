"""Rule local_keypoints_chunk: the SIFT keypoints of one chunk of a split's photos, from their
preprocessed squares or, where local.max_side is set, from the original photos."""

from pathlib import Path

import numpy as np

from whaleid.data.preprocess import cache_index
from whaleid.io.logs import Progress, log_to_file
from whaleid.io.tables import read_table
from whaleid.methods.local.chunks import chunk_rows, parse_chunk
from whaleid.methods.local.keypoints import build_keypoint_cache, build_photo_keypoint_cache
from whaleid.reproducibility import opencv_kernels
from whaleid.settings import KeypointSettings

log = log_to_file(snakemake.log[0])
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
# what another processor may compute otherwise (whaleid.reproducibility): ? marks a kernel held off or missing
log.info("OpenCV's kernels: %s; reproducible: %s", opencv_kernels(), p.reproducible)
settings = KeypointSettings(**p.settings)
chunk, chunks = parse_chunk(w.scatteritem)
# Either way, photo i of the chunk is row rows.start + i of the preprocess cache's order, which
# every stage reading keypoints shares.
if settings.max_side is None:
    n_photos = len(np.load(i.cache, mmap_mode="r"))
else:
    index = cache_index(read_table(i.manifest), w.split)
    n_photos = len(index)
rows = chunk_rows(n_photos, chunk, chunks, p.chunk_size)
progress = Progress(log, f"keypoints of {w.split} photos {rows.start + 1} to {rows.stop} (chunk {w.scatteritem})")
if settings.max_side is None:
    build_keypoint_cache(i.cache, snakemake.output.keypoints, settings, rows=rows, n_jobs=snakemake.threads,
                         chunk_size=p.chunk_size, progress=progress)
else:
    index = index.iloc[rows.start:rows.stop]
    build_photo_keypoint_cache([Path(i.images, image) for image in index["image"]], snakemake.output.keypoints,
                               settings, sizes=list(zip(index["width"].astype(int), index["height"].astype(int))),
                               n_jobs=snakemake.threads, chunk_size=p.chunk_size, progress=progress)
