# The published convolutional autoencoder: trained without labels on train and test images,
# then its encoder turns every image into a code (224x224x3 at the default 896) for the classifier.


rule autoencoder_train:
    input:
        caches=expand(f"{R}/preprocess/{{split}}.npy", split=DATA_SPLITS),
    output:
        model=f"{R}/autoencoder/model.keras",
        history=f"{R}/autoencoder/history.csv",
        reconstructions=report(
            f"{R}/autoencoder/reconstructions.png",
            category="Autoencoder",
            caption="../report/reconstructions.rst",
        ),
    log:
        f"{R}/logs/autoencoder_train.log",
    benchmark:
        f"{R}/benchmarks/autoencoder_train.tsv"
    params:
        code=package_code("autoencoder_train.py"),
        job=tensorflow_job("autoencoder"),
        # Not an output: Snakemake deletes a failed job's outputs, and the backup must survive
        # a killed job for the rerun to resume from its last finished epoch.
        backup_dir=f"{R}/autoencoder/backup",
        settings=stage_settings(settings.AutoencoderSettings),
    threads: config["autoencoder"]["threads"]
    resources:
        gpu=config["autoencoder"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/autoencoder_train.py"


rule autoencoder_encode:
    input:
        model=f"{R}/autoencoder/model.keras",
        cache=f"{R}/preprocess/{{split}}.npy",
        index=f"{R}/preprocess/{{split}}.csv",
    output:
        codes=f"{R}/autoencoder/codes/{{split}}.npy",
        index=f"{R}/autoencoder/codes/{{split}}.csv",
    log:
        f"{R}/logs/autoencoder_encode/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/autoencoder_encode/{{split}}.tsv"
    params:
        code=package_code("autoencoder_encode.py"),
        job=tensorflow_job("autoencoder"),
        batch_size=config["encode"]["batch_size"],
        chunk_size=config["encode"]["chunk_size"],
    threads: config["autoencoder"]["threads"]
    resources:
        gpu=config["encode"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/autoencoder_encode.py"
