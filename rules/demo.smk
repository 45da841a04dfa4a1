# The embedded demo dataset, generated only when data_dir points at it.


rule demo_dataset:
    output:
        train_csv=f"{DEMO_DIR}/train.csv",
        test_truth=f"{DEMO_DIR}/test_truth.csv",
        sample_submission=f"{DEMO_DIR}/sample_submission.csv",
        train_dir=directory(f"{DEMO_DIR}/train"),
        test_dir=directory(f"{DEMO_DIR}/test"),
    log:
        f"{R}/logs/demo_dataset.log",
    benchmark:
        f"{R}/benchmarks/demo_dataset.tsv"
    params:
        code=package_code("demo_dataset.py"),
        # the photos are the same bytes on any number of threads: a change of it reruns nothing
        settings={k: v for k, v in config["demo"].items() if k != "threads"},
    threads: config["demo"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/demo_dataset.py"
