"""Rule identify_by_local_features: each photo's shortlist verified geometrically, new_whale
threshold (in inliers) chosen on validation."""

from whaleid.files import write_csv
from whaleid.local_matching import MatchSettings, identify_splits
from whaleid.logs import Progress, log_to_file
from whaleid.submission import write_predictions

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
settings = MatchSettings(neighbours=p.neighbours, shortlist=p.shortlist, photos_per_individual=p.photos_per_individual,
                         ratio=p.ratio, transform=p.transform, reprojection_error=p.reprojection_error,
                         nprobe=p.nprobe, ransac_iterations=p.ransac_iterations)
bars = {}
validation, test, curve, threshold, validation_shortlists, test_shortlists = identify_splits(
    i.train, i.train_index, i.test, i.test_index, i.split, i.manifest, settings, p.image_size, p.phash_distances,
    p.thresholds, n_jobs=snakemake.threads,
    progress=lambda label, done, total: bars.setdefault(label, Progress(log, f"matched {label}"))(done, total),
)
log.info("new_whale threshold %g inliers; validation MAP@5 by duplicate distance and threshold:\n%s", threshold,
         curve.to_string(index=False))
write_csv(curve, snakemake.output.threshold_curve)
write_csv(validation_shortlists, snakemake.output.validation_shortlists)
write_csv(test_shortlists, snakemake.output.test_shortlists)
write_predictions(snakemake.output.validation, validation["image"], validation["answers"])
write_predictions(snakemake.output.test, test["image"], test["answers"])
