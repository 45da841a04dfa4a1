"""Rule local_keypoints_kept: of each photo's keypoints found, the local.n_features the foreground model finds
likeliest on the animal, and their weights (where local.detected_per_kept is above 1)."""

from whaleid.io.logs import log_to_file
from whaleid.methods.local.keypoints import write_kept_keypoints

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

n_photos = write_kept_keypoints(i.keypoints, i.weights, p.n_features, o.keypoints, o.weights)
log.info("%s: the %d keypoints most likely on the animal kept of each of %d photos", o.keypoints, p.n_features,
         n_photos)
