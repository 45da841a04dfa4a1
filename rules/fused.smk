# The local and metric-learning methods' scores combined, weight and threshold chosen on validation.


rule fused_identify:
    input:
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
        train=f"{R}/metric_learning/embeddings/train.npy",
        train_index=f"{R}/metric_learning/embeddings/train.csv",
        test=f"{R}/metric_learning/embeddings/test.npy",
        test_index=f"{R}/metric_learning/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
    output:
        **identification_output("fused"),
        weights=f"{R}/fused/weights.csv",
    log:
        f"{R}/logs/fused_identify.log",
    benchmark:
        f"{R}/benchmarks/fused_identify.tsv"
    params:
        weights=config["fused"]["weights"],
        half_inliers=config["fused"]["half_inliers"],
        threshold_grid=config["metric_learning"]["new_whale_thresholds"],
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
        phash_distances=duplicate_distances(),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/fused_identify.py"
