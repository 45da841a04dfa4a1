# The local and metric-learning methods' calibrated probabilities combined, weight and threshold chosen on validation.


rule fused_identify:
    input:
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
        # the probability of an individual voting did not shortlist
        verifier=f"{R}/local/verifier/model.joblib",
        train=f"{R}/metric_learning/embeddings/train.npy",
        train_index=f"{R}/metric_learning/embeddings/train.csv",
        test=f"{R}/metric_learning/embeddings/test.npy",
        test_index=f"{R}/metric_learning/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        reviewed=reviewed_input(),
        encounters=encounters_input(),
    output:
        **identification_output("fused"),
        weights=f"{R}/fused/weights.csv",
        # each input's expected calibration error on validation
        calibration=f"{R}/fused/calibration.csv",
        # each query's best individuals, with their fused and each input's probabilities
        validation_candidates=f"{R}/fused/candidates/validation.csv",
        test_candidates=f"{R}/fused/candidates/test.csv",
    log:
        f"{R}/logs/fused_identify.log",
    benchmark:
        f"{R}/benchmarks/fused_identify.tsv"
    params:
        code=package_code("fused_identify.py"),
        weights=config["fused"]["weights"],
        calibration=config["fused"]["calibration"],
        thresholds=settings.threshold_grid(**config["fused"]["new_whale_probabilities"]),
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
        phash_distances=duplicate_distances(),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/fused_identify.py"
