# The local-feature and embedding rankings combined, weight and threshold chosen on validation.


rule fuse_rankings:
    input:
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
        train=f"{R}/embeddings/train.npy",
        train_index=f"{R}/embeddings/train.csv",
        test=f"{R}/embeddings/test.npy",
        test_index=f"{R}/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
    output:
        validation=f"{R}/predictions/fused/validation.csv",
        test=f"{R}/predictions/fused/test.csv",
        threshold_curve=f"{R}/fused/new_whale_threshold.csv",
        weights=f"{R}/fused/weights.csv",
    log:
        f"{R}/logs/fuse_rankings.log",
    benchmark:
        f"{R}/benchmarks/fuse_rankings.tsv"
    params:
        weights=config["fused"]["weights"],
        half_inliers=config["fused"]["half_inliers"],
        threshold_grid=SIMILARITY_GRID,
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
        phash_distances=duplicate_distances(),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/fuse_rankings.py"
