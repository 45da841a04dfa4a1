# Grayscale, centred square, resize, contrast stretch: the published preprocessing, cached.


rule preprocess:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        images=f"{PHOTOS}/{{split}}",
    output:
        cache=f"{R}/preprocess/{{split}}.npy",
        index=f"{R}/preprocess/{{split}}.csv",
    log:
        f"{R}/logs/preprocess/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/preprocess/{{split}}.tsv"
    params:
        code=package_code("preprocess.py"),
        size=config["preprocess"]["size"],
        chunk_size=config["preprocess"]["chunk_size"],
    threads: config["preprocess"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/preprocess.py"
