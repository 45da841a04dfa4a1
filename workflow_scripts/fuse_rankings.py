"""Rule fuse_rankings: local-feature and embedding scores combined, the weight and new_whale
threshold chosen on validation."""

from whaleid.files import write_csv
from whaleid.fusion import fuse_splits
from whaleid.logs import log_to_file
from whaleid.ranking import threshold_grid
from whaleid.submission import write_predictions

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
validation, test, curve, weights, weight, threshold = fuse_splits(
    i.validation_shortlists, i.test_shortlists, i.train, i.train_index, i.test, i.test_index, i.split, i.manifest,
    p.weights, p.half_inliers, p.phash_distances, threshold_grid(**p.threshold_grid), aggregate=p.aggregate,
    top_k=p.top_k,
)
log.info("validation MAP@5 by fusion weight:\n%s", weights.to_string(index=False))
write_csv(weights, snakemake.output.weights)
write_csv(curve, snakemake.output.threshold_curve)
write_predictions(snakemake.output.validation, validation["image"], validation["answers"])
write_predictions(snakemake.output.test, test["image"], test["answers"])
