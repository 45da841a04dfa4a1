# ImageNet weights for the keras.applications backbones, fetched once on the submit host into
# <keras_home>/models/, which the training jobs read as KERAS_HOME: GPU nodes often have no
# internet. Only in the DAG where a method that runs starts from weights: imagenet.


rule stage_weights:
    output:
        list(staged_weights()),
    log:
        f"{R}/logs/stage_weights.log",
    benchmark:
        f"{R}/benchmarks/stage_weights.tsv"
    params:
        code=package_code("stage_weights.py"),
        # one {backbone, side} per output file, in the same order
        weights=list(staged_weights().values()),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/stage_weights.py"
