"""Rule report_gallery: pages of query photos beside a method's five ranked answers, for the report."""

from whaleid.io.logs import log_to_file
from whaleid.review.evidence import evidence_files
from whaleid.review.gallery import write_galleries

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
write_galleries(
    method=snakemake.wildcards.method, split_csv=i.split, validation_predictions=i.validation,
    test_predictions=i.test_predictions, threshold_curve=i.threshold_curve, train_images=i.train_images,
    train_images_index=i.train_images_index, test_images=i.test_images, test_images_index=i.test_images_index,
    # an empty list where the data folder has no test_truth.csv
    test_truth=i.test_truth[0] if i.test_truth else None,
    # the test photos a person identified, in the test catalogue, where decisions were fed back
    reviewed=i.reviewed[0] if i.reviewed else None,
    best_hits_out=snakemake.output.best_hits, worst_misses_out=snakemake.output.worst_misses,
    size=snakemake.params.gallery_size, **evidence_files(i, p.matching),
)
