# Duplicates first, then new_whale, then the commonest ids: the floor every model must beat.


rule baseline:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        split=f"{R}/validation/split.csv",
    output:
        validation=f"{R}/predictions/baseline/validation.csv",
        test=f"{R}/predictions/baseline/test.csv",
        threshold_curve=f"{R}/baseline/phash_threshold.csv",
    log:
        f"{R}/logs/baseline.log",
    benchmark:
        f"{R}/benchmarks/baseline.tsv"
    params:
        max_distance=config["baseline"]["phash_max_distance"],
        candidates=config["baseline"]["phash_max_distance_candidates"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/baseline.py"
