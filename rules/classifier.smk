# The published classifier: a VGG19 / ResNet50 (or light MobileNetV2) base with a new softmax
# head over the individuals, trained on the autoencoder's codes (or the preprocessed images).


rule train_classifier:
    input:
        array=classifier_input("train", "npy"),
        index=classifier_input("train", "csv"),
        split=f"{R}/validation/split.csv",
        weights=weights_input("classifier"),
        # weights: imagenet: the file rule stage_weights put in keras_home on the submit host
        imagenet=staged_weights_input("classifier"),
    output:
        model=f"{R}/classifier/model.keras",
        labels=f"{R}/classifier/labels.json",
        history=f"{R}/classifier/history.csv",
    log:
        f"{R}/logs/train_classifier.log",
    benchmark:
        f"{R}/benchmarks/train_classifier.tsv"
    params:
        # Outside the outputs, which Snakemake deletes when a job fails: a rerun resumes from it.
        backup_dir=f"{R}/classifier_backup",
        backbone=config["classifier"]["backbone"],
        weights=config["classifier"]["weights"],
        keras_home=keras_home_param,
        input_kind=config["classifier"]["input"],
        input_size=config["classifier"]["input_size"],
        head_epochs=config["classifier"]["head_epochs"],
        head_learning_rate=config["classifier"]["head_learning_rate"],
        fine_tune_epochs=config["classifier"]["fine_tune_epochs"],
        fine_tune_learning_rate=config["classifier"]["fine_tune_learning_rate"],
        fine_tune_layers=config["classifier"]["fine_tune_layers"],
        batch_size=config["classifier"]["batch_size"],
        dropout=config["classifier"]["dropout"],
        class_weights=config["classifier"]["class_weights"],
        effective_beta=config["classifier"]["effective_beta"],
        new_whale=config["classifier"]["new_whale"],
        augment=config["classifier"]["augment"],
        flip=config["classifier"]["flip"],
        thresholds=config["classifier"]["new_whale_thresholds"],
        mixed_precision=config["classifier"]["mixed_precision"],
        seed=config["classifier"]["seed"],
    threads: config["classifier"]["threads"]
    resources:
        gpu=config["classifier"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/train_classifier.py"


rule predict_classifier:
    input:
        model=f"{R}/classifier/model.keras",
        labels=f"{R}/classifier/labels.json",
        train_array=classifier_input("train", "npy"),
        train_index=classifier_input("train", "csv"),
        test_array=classifier_input("test", "npy"),
        test_index=classifier_input("test", "csv"),
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
    output:
        validation=f"{R}/predictions/classifier/validation.csv",
        test=f"{R}/predictions/classifier/test.csv",
        threshold_curve=f"{R}/classifier/new_whale_threshold.csv",
    log:
        f"{R}/logs/predict_classifier.log",
    benchmark:
        f"{R}/benchmarks/predict_classifier.tsv"
    params:
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
        "../workflow_scripts/predict_classifier.py"
