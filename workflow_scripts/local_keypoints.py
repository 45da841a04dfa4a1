"""Rule local_keypoints: a split's keypoint cache, its chunks' caches joined in order, and its index."""

from pathlib import Path

from whaleid.data.preprocess import cache_index
from whaleid.io.files import write_bytes, write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.methods.local.keypoints import join_keypoint_caches

log = log_to_file(snakemake.log[0])
i, o, split = snakemake.input, snakemake.output, snakemake.wildcards.split
# Row i of the keypoints is row i of the preprocess cache (or, from the original photos, of the
# order the preprocess cache would have): the same index names both.
from_squares = "index" in i.keys()  # else from the original photos, which have no preprocess cache
index = read_table(i.index) if from_squares else cache_index(read_table(i.manifest), split)
n_photos = join_keypoint_caches(i.chunks, o.keypoints)
if n_photos != len(index):
    raise ValueError(f"the keypoint chunks of {split} hold {n_photos} photos, but its index lists {len(index)}: "
                     "made from another preprocess cache; rerun local_keypoints_chunk")
if from_squares:
    write_bytes(Path(i.index).read_bytes(), o.index)
else:
    write_csv(index, o.index)
log.info("keypoints of %d %s photos, joined from %d chunks", n_photos, split, len(i.chunks))
