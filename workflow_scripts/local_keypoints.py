"""Rule local_keypoints: the SIFT keypoints of every photo of one split, from its preprocessed square
or, where local.max_side is set, from the original photo."""

from pathlib import Path

from whaleid.data.preprocess import cache_index
from whaleid.io.files import write_bytes, write_csv
from whaleid.io.logs import Progress, log_to_file
from whaleid.io.tables import read_table
from whaleid.methods.local.keypoints import build_keypoint_cache, build_photo_keypoint_cache
from whaleid.settings import KeypointSettings

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
settings = KeypointSettings(**p.settings)
progress = Progress(log, f"keypoints of {snakemake.wildcards.split}")
if settings.max_side is None:
    build_keypoint_cache(i.cache, snakemake.output.keypoints, settings, n_jobs=snakemake.threads,
                         chunk_size=p.chunk_size, progress=progress)
    # Row i of the keypoints is row i of the preprocess cache: the same index names both.
    with open(i.index, "rb") as index:
        write_bytes(index.read(), snakemake.output.index)
else:
    # in the preprocess cache's order, which every stage reading keypoints shares
    index = cache_index(read_table(i.manifest), snakemake.wildcards.split)
    build_photo_keypoint_cache([Path(i.images, image) for image in index["image"]], snakemake.output.keypoints,
                               settings, sizes=list(zip(index["width"].astype(int), index["height"].astype(int))),
                               n_jobs=snakemake.threads, chunk_size=p.chunk_size, progress=progress)
    write_csv(index, snakemake.output.index)
