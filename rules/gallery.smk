# Pages for people to look at before they trust a score: query photos beside the five answers
# of the metric-learning method, each shown by its individual's most similar catalogue photo.


rule candidate_gallery:
    input:
        train=f"{R}/embeddings/train.npy",
        train_index=f"{R}/embeddings/train.csv",
        test=f"{R}/embeddings/test.npy",
        test_index=f"{R}/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        validation=f"{R}/predictions/metric_learning/validation.csv",
        test_predictions=f"{R}/predictions/metric_learning/test.csv",
        threshold_curve=f"{R}/metric_learning/new_whale_threshold.csv",
        # the thumbnails: the preprocessed squares, whatever the embedding read
        train_images=f"{R}/preprocess/train.npy",
        train_images_index=f"{R}/preprocess/train.csv",
        test_images=f"{R}/preprocess/test.npy",
        test_images_index=f"{R}/preprocess/test.csv",
        test_truth=test_truth_input(),
        # embeddings, index and preprocessed squares of the photos added to the catalogue, if any
        additions=catalogue_additions_output()
        + ([f"{R}/catalogue/additions_images.npy"] if ADDITIONS else []),
    output:
        best_hits=report(
            f"{R}/report/gallery/metric_learning_best_hits.html",
            category="Candidate gallery",
            caption="../report/gallery.rst",
            labels={"method": "metric_learning", "page": "best hits"},
        ),
        worst_misses=report(
            f"{R}/report/gallery/metric_learning_worst_misses.html",
            category="Candidate gallery",
            caption="../report/gallery.rst",
            labels={"method": "metric_learning", "page": "worst misses"},
        ),
    log:
        f"{R}/logs/candidate_gallery.log",
    benchmark:
        f"{R}/benchmarks/candidate_gallery.tsv"
    params:
        gallery_size=config["report"]["gallery_size"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/candidate_gallery.py"
