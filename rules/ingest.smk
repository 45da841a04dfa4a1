# Check train.csv and every image; write the manifest later stages read instead of the folder.


rule ingest:
    input:
        train_csv=f"{DATA}/train.csv",
        train_dir=f"{DATA}/train",
        test_dir=f"{DATA}/test",
        sample_submission=sample_submission_input(),
    output:
        manifest=f"{R}/ingest/manifest.csv",
        rejected=f"{R}/ingest/rejected.csv",
    log:
        f"{R}/logs/ingest.log",
    benchmark:
        f"{R}/benchmarks/ingest.tsv"
    params:
        code=package_code("ingest.py"),
        max_pixels=config["ingest"]["max_pixels"],
        max_rejected_fraction=config["ingest"]["max_rejected_fraction"],
    threads: config["ingest"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/ingest.py"
