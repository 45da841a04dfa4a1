# The local validation split every method is scored on.


rule validation_split:
    input:
        manifest=f"{R}/ingest/manifest.csv",
    output:
        split=f"{R}/validation/split.csv",
    log:
        f"{R}/logs/validation_split.log",
    benchmark:
        f"{R}/benchmarks/validation_split.tsv"
    params:
        code=package_code("validation_split.py"),
        single_image_fraction=config["validation"]["single_image_fraction"],
        new_whale_fraction=config["validation"]["new_whale_fraction"],
        seed=config["validation"]["seed"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/validation_split.py"
