# The published convolutional autoencoder: trained without labels on train and test images,
# then its encoder turns every image into a code (224x224x3 at the default 896) for the classifier.


rule train_autoencoder:
    input:
        caches=expand(f"{R}/preprocess/{{split}}.npy", split=SPLITS),
    output:
        model=f"{R}/autoencoder/model.keras",
        history=f"{R}/autoencoder/history.csv",
        reconstructions=report(
            f"{R}/autoencoder/reconstructions.png",
            category="Autoencoder",
            caption="../report/reconstructions.rst",
        ),
    log:
        f"{R}/logs/train_autoencoder.log",
    benchmark:
        f"{R}/benchmarks/train_autoencoder.tsv"
    params:
        # Not an output: Snakemake deletes a failed job's outputs, and the backup must survive
        # a killed job for the rerun to resume from its last finished epoch.
        backup_dir=f"{R}/autoencoder_backup",
        epochs=config["autoencoder"]["epochs"],
        batch_size=config["autoencoder"]["batch_size"],
        learning_rate=config["autoencoder"]["learning_rate"],
        optimizer=config["autoencoder"]["optimizer"],
        validation_fraction=config["autoencoder"]["validation_fraction"],
        augment=config["autoencoder"]["augment"],
        flip=config["autoencoder"]["flip"],
        mixed_precision=config["autoencoder"]["mixed_precision"],
        seed=config["autoencoder"]["seed"],
    threads: config["autoencoder"]["threads"]
    resources:
        gpu=config["autoencoder"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/train_autoencoder.py"


rule encode:
    input:
        model=f"{R}/autoencoder/model.keras",
        cache=f"{R}/preprocess/{{split}}.npy",
        index=f"{R}/preprocess/{{split}}.csv",
    output:
        codes=f"{R}/codes/{{split}}.npy",
        index=f"{R}/codes/{{split}}.csv",
    log:
        f"{R}/logs/encode/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/encode/{{split}}.tsv"
    params:
        batch_size=config["encode"]["batch_size"],
        chunk_size=config["encode"]["chunk_size"],
    threads: config["autoencoder"]["threads"]
    resources:
        gpu=config["encode"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/encode.py"
