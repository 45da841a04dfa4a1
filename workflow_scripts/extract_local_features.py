"""Rule extract_local_features: the SIFT keypoints of every preprocessed photo of one split."""

from whaleid.files import write_bytes
from whaleid.local_features import FeatureSettings, build_feature_cache
from whaleid.logs import Progress, log_to_file

log = log_to_file(snakemake.log[0])
p = snakemake.params
build_feature_cache(
    snakemake.input.cache,
    snakemake.output.features,
    FeatureSettings(n_features=p.n_features, image_size=p.image_size, contrast_threshold=p.contrast_threshold,
                    border=p.border, upright=p.upright),
    n_jobs=snakemake.threads,
    chunk_size=p.chunk_size,
    progress=Progress(log, f"keypoints of {snakemake.wildcards.split}"),
)
# Row i of the keypoints is row i of the preprocess cache: the same index names both.
with open(snakemake.input.index, "rb") as index:
    write_bytes(index.read(), snakemake.output.index)
