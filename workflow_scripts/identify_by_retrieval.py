"""Rule identify_by_retrieval: each photo's nearest individuals, new_whale threshold chosen on validation."""

from whaleid.catalogue import identify_splits
from whaleid.files import write_csv
from whaleid.logs import log_to_file
from whaleid.ranking import threshold_grid
from whaleid.submission import write_predictions

log = log_to_file(snakemake.log[0])
i = snakemake.input
validation, test, curve, threshold = identify_splits(
    i.train, i.train_index, i.test, i.test_index, i.split, i.manifest, snakemake.params.phash_distances,
    threshold_grid(**snakemake.params.threshold_grid), additions=tuple(i.additions) or None,
    aggregate=snakemake.params.aggregate, top_k=snakemake.params.top_k,
)
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", threshold,
         curve.to_string(index=False))
write_csv(curve, snakemake.output.threshold_curve)
write_predictions(snakemake.output.validation, validation["image"], validation["answers"])
write_predictions(snakemake.output.test, test["image"], test["answers"])
