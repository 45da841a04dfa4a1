"""Rule report_gallery: pages of query photos beside a method's five ranked answers, for the report."""

from whaleid.gallery import EmbeddingFiles, KeypointFiles, write_galleries
from whaleid.logs import log_to_file
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
given = set(i.keys())
embeddings = keypoints = pairs = scores = None
if "embeddings_train.npy" in given:
    embeddings = EmbeddingFiles(i["embeddings_train.npy"], i["embeddings_train.csv"], i["embeddings_test.npy"],
                                i["embeddings_test.csv"], tuple(i.additions) if "additions" in given else None)
if "keypoints_train.npy" in given:
    keypoints = KeypointFiles(i["keypoints_train.npy"], i["keypoints_train.csv"], i["keypoints_test.npy"],
                              i["keypoints_test.csv"], p.matching["image_size"], MatchSettings(**p.matching["settings"]))
    pairs = {split: i[f"pairs_{split}"] for split in ("validation", "test")}
    scores = {split: i[f"scores_{split}"] for split in ("validation", "test")}
write_galleries(
    method=snakemake.wildcards.method, split_csv=i.split, validation_predictions=i.validation,
    test_predictions=i.test_predictions, threshold_curve=i.threshold_curve, train_images=i.train_images,
    train_images_index=i.train_images_index, test_images=i.test_images, test_images_index=i.test_images_index,
    # an empty list where the data folder has no test_truth.csv
    test_truth=i.test_truth[0] if i.test_truth else None,
    embeddings=embeddings, keypoints=keypoints, pairs=pairs, scores=scores,
    best_hits_out=snakemake.output.best_hits, worst_misses_out=snakemake.output.worst_misses,
    size=snakemake.params.gallery_size,
)
