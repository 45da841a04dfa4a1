# The published classifier: a VGG19 / ResNet50 (or light MobileNetV2) base with a new softmax
# head over the individuals, trained on the autoencoder's codes (or the preprocessed images).


rule classifier_train:
    input:
        array=model_input("classifier", "train", "npy"),
        index=model_input("classifier", "train", "csv"),
        split=f"{R}/validation/split.csv",
        weights=weights_input("classifier"),
        # weights: imagenet: the file rule stage_weights put in keras_home on the submit host
        imagenet=staged_weights_input("classifier"),
    output:
        model=f"{R}/classifier/model.keras",
        labels=f"{R}/classifier/labels.json",
        history=f"{R}/classifier/history.csv",
    log:
        f"{R}/logs/classifier_train.log",
    benchmark:
        f"{R}/benchmarks/classifier_train.tsv"
    params:
        code=package_code("classifier_train.py"),
        job=tensorflow_job("classifier"),
        # Outside the outputs, which Snakemake deletes when a job fails: a rerun resumes from it.
        backup_dir=f"{R}/classifier/backup",
        keras_home=keras_home_param,
        settings=stage_settings(settings.ClassifierSettings),
    threads: config["classifier"]["threads"]
    resources:
        gpu=config["classifier"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/classifier_train.py"


rule classifier_identify:
    input:
        model=f"{R}/classifier/model.keras",
        labels=f"{R}/classifier/labels.json",
        train_array=model_input("classifier", "train", "npy"),
        train_index=model_input("classifier", "train", "csv"),
        test_array=model_input("classifier", "test", "npy"),
        test_index=model_input("classifier", "test", "csv"),
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        reviewed=reviewed_input(),
        encounters=encounters_input(),
    output:
        **identification_output("classifier"),
    log:
        f"{R}/logs/classifier_identify.log",
    benchmark:
        f"{R}/benchmarks/classifier_identify.tsv"
    params:
        code=package_code("classifier_identify.py"),
        job=tensorflow_job("classifier"),
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
        thresholds=config["classifier"]["new_whale_thresholds"],
        batch_size=config["classifier"]["batch_size"],
    threads: config["classifier"]["threads"]
    resources:
        gpu=config["classifier"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/classifier_identify.py"
