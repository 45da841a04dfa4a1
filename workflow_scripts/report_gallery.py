"""Rule report_gallery: pages of query photos beside their five ranked answers, for the report."""

from whaleid.gallery import write_galleries
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
i = snakemake.input
write_galleries(
    train_embeddings=i.train, train_index=i.train_index, test_embeddings=i.test, test_index=i.test_index,
    split_csv=i.split, validation_predictions=i.validation, test_predictions=i.test_predictions,
    threshold_curve=i.threshold_curve, train_images=i.train_images, train_images_index=i.train_images_index,
    test_images=i.test_images, test_images_index=i.test_images_index,
    # empty lists where the data folder has no test_truth.csv, or nothing was added to the catalogue
    test_truth=i.test_truth[0] if i.test_truth else None,
    additions=tuple(i.additions) if i.additions else None,
    best_hits_out=snakemake.output.best_hits, worst_misses_out=snakemake.output.worst_misses,
    size=snakemake.params.gallery_size,
)
