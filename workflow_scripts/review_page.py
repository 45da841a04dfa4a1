"""Rule review_page: the test photos beside one method's candidates, on a page a person reviews by keyboard."""

from whaleid.io.logs import log_to_file
from whaleid.review.evidence import evidence_files
from whaleid.review.review_page import write_review

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
write_review(
    method=p.method, run=p.run, precision=p.precision, split_csv=i.split, validation_predictions=i.validation,
    test_predictions=i.test_predictions, threshold_curve=i.threshold_curve,
    train_images=i.train_images, train_images_index=i.train_images_index,
    test_images=i.test_images, test_images_index=i.test_images_index,
    # the test photos already decided, where decisions were fed back: not asked again
    reviewed=i.reviewed[0] if i.reviewed else None,
    # the data folder's encounters.csv, where it has one: an encounter's photos are one query
    encounters=i.encounters[0] if i.encounters else None,
    # the local method's out-of-fold answers, where the threshold is chosen on them, not on validation
    fold_answers=(i.fold_answers, i.poolings) if "fold_answers" in i.keys() else None,
    # the test photos the local method proposes as new individuals, where it does
    new_individuals=i.new_individuals if "new_individuals" in i.keys() else None,
    # the photo files, shown whole and in colour (the catalogue additions', where there are some)
    manifest=i.manifest, photo_folders={"train": i.train_photos, "test": i.test_photos},
    added_photos=i.added_photos[0] if i.added_photos else None, thumbnail_side=p.thumbnail_side,
    n_jobs=snakemake.threads,
    page_out=o.page, thumbnails_out=o.thumbnails, queue_out=o.queue, auto_accept_out=o.auto_accept,
    **evidence_files(i, p.matching),
)
