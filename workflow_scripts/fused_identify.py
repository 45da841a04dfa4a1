"""Rule fused_identify: local-feature and embedding scores combined, the weight and new_whale
threshold chosen on validation."""

from whaleid.files import write_csv
from whaleid.fused import identify
from whaleid.logs import log_to_file
from whaleid.settings import threshold_grid

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
answers = identify(i.validation_shortlists, i.test_shortlists, i.train, i.train_index, i.test, i.test_index, i.split,
                   i.manifest, weights=p.weights, half_inliers=p.half_inliers, phash_distances=p.phash_distances,
                   thresholds=threshold_grid(**p.threshold_grid), aggregate=p.aggregate, top_k=p.top_k)
log.info("validation MAP@5 by fusion weight:\n%s", answers.weights.to_string(index=False))
write_csv(answers.weights, o.weights)
answers.write(o.validation, o.test, o.threshold_curve)
