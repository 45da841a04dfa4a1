# Identification that works: a metric-learning embedding (sub-center ArcFace), then each photo
# answered by its nearest individuals in the catalogue, new_whale where none is near enough.


rule metric_learning_train:
    input:
        array=model_input("metric_learning", "train", "npy"),
        index=model_input("metric_learning", "train", "csv"),
        split=f"{R}/validation/split.csv",
        weights=weights_input("metric_learning"),
        # weights: imagenet: the file rule stage_weights put in keras_home on the submit host
        imagenet=staged_weights_input("metric_learning"),
    output:
        model=f"{R}/metric_learning/model.keras",
        history=f"{R}/metric_learning/history.csv",
    log:
        f"{R}/logs/metric_learning_train.log",
    benchmark:
        f"{R}/benchmarks/metric_learning_train.tsv"
    params:
        code=package_code("metric_learning_train.py"),
        job=tensorflow_job("metric_learning"),
        # Outside the outputs, which Snakemake deletes when a job fails: a rerun resumes from it.
        backup_dir=f"{R}/metric_learning/backup",
        keras_home=keras_home_param,
        settings=stage_settings(settings.MetricLearningSettings),
    threads: config["metric_learning"]["threads"]
    resources:
        gpu=config["metric_learning"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/metric_learning_train.py"


rule metric_learning_embed:
    input:
        model=f"{R}/metric_learning/model.keras",
        array=model_input("metric_learning", "{split}", "npy"),
        index=model_input("metric_learning", "{split}", "csv"),
    output:
        embeddings=f"{R}/metric_learning/embeddings/{{split}}.npy",
        index=f"{R}/metric_learning/embeddings/{{split}}.csv",
    log:
        f"{R}/logs/metric_learning_embed/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/metric_learning_embed/{{split}}.tsv"
    params:
        code=package_code("metric_learning_embed.py"),
        job=tensorflow_job("metric_learning"),
        batch_size=config["metric_learning"]["embed_batch_size"],
        views=config["metric_learning"]["tta_views"],
        # rows per resume checkpoint, as for the codes
        chunk_size=config["encode"]["chunk_size"],
    threads: config["metric_learning"]["threads"]
    resources:
        gpu=config["metric_learning"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/metric_learning_embed.py"


rule metric_learning_additions:
    input:
        model=f"{R}/metric_learning/model.keras",
        labels=catalogue_additions_input("train.csv"),
        images=catalogue_additions_input("train"),
    output:
        embeddings=f"{R}/metric_learning/additions/embeddings.npy",
        index=f"{R}/metric_learning/additions/index.csv",
        rejected=f"{R}/metric_learning/additions/rejected.csv",
        squares=f"{R}/metric_learning/additions/squares.npy",
    log:
        f"{R}/logs/metric_learning_additions.log",
    benchmark:
        f"{R}/benchmarks/metric_learning_additions.tsv"
    params:
        code=package_code("metric_learning_additions.py"),
        job=tensorflow_job("metric_learning"),
        input_kind=config["metric_learning"]["input"],
        size=config["preprocess"]["size"],
        preprocess_chunk_size=config["preprocess"]["chunk_size"],
        max_pixels=config["ingest"]["max_pixels"],
        batch_size=config["metric_learning"]["embed_batch_size"],
        views=config["metric_learning"]["tta_views"],
        chunk_size=config["encode"]["chunk_size"],
    threads: config["metric_learning"]["threads"]
    resources:
        gpu=config["metric_learning"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/metric_learning_additions.py"


rule metric_learning_identify:
    input:
        train=f"{R}/metric_learning/embeddings/train.npy",
        train_index=f"{R}/metric_learning/embeddings/train.csv",
        test=f"{R}/metric_learning/embeddings/test.npy",
        test_index=f"{R}/metric_learning/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        additions=catalogue_additions_output(),
        reviewed=reviewed_input(),
        encounters=encounters_input(),
    output:
        **identification_output("metric_learning"),
    log:
        f"{R}/logs/metric_learning_identify.log",
    benchmark:
        f"{R}/benchmarks/metric_learning_identify.tsv"
    params:
        code=package_code("metric_learning_identify.py"),
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
        threshold_grid=config["metric_learning"]["new_whale_thresholds"],
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/metric_learning_identify.py"
