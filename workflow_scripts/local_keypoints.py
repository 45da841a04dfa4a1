"""Rule local_keypoints: the SIFT keypoints of every preprocessed photo of one split."""

from whaleid.files import write_bytes
from whaleid.local.keypoints import build_keypoint_cache
from whaleid.logs import Progress, log_to_file
from whaleid.settings import KeypointSettings

log = log_to_file(snakemake.log[0])
build_keypoint_cache(snakemake.input.cache, snakemake.output.keypoints, KeypointSettings(**snakemake.params.settings),
                     n_jobs=snakemake.threads, chunk_size=snakemake.params.chunk_size,
                     progress=Progress(log, f"keypoints of {snakemake.wildcards.split}"))
# Row i of the keypoints is row i of the preprocess cache: the same index names both.
with open(snakemake.input.index, "rb") as index:
    write_bytes(index.read(), snakemake.output.index)
