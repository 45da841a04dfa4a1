# Identification that works: a metric-learning embedding (sub-center ArcFace), then each photo
# answered by its nearest individuals in the catalogue, new_whale where none is near enough.


rule train_embedding:
    input:
        array=metric_learning_input("train", "npy"),
        index=metric_learning_input("train", "csv"),
        split=f"{R}/validation/split.csv",
        weights=weights_input("metric_learning"),
        # weights: imagenet: the file rule stage_weights put in keras_home on the submit host
        imagenet=staged_weights_input("metric_learning"),
    output:
        model=f"{R}/metric_learning/model.keras",
        history=f"{R}/metric_learning/history.csv",
    log:
        f"{R}/logs/train_embedding.log",
    benchmark:
        f"{R}/benchmarks/train_embedding.tsv"
    params:
        # Outside the outputs, which Snakemake deletes when a job fails: a rerun resumes from it.
        backup_dir=f"{R}/metric_learning_backup",
        backbone=config["metric_learning"]["backbone"],
        weights=config["metric_learning"]["weights"],
        keras_home=keras_home_param,
        input_kind=config["metric_learning"]["input"],
        input_size=config["metric_learning"]["input_size"],
        width=config["metric_learning"]["width"],
        embedding_size=config["metric_learning"]["embedding_size"],
        dropout=config["metric_learning"]["dropout"],
        sub_centers=config["metric_learning"]["sub_centers"],
        margin=config["metric_learning"]["margin"],
        scale=config["metric_learning"]["scale"],
        epochs=config["metric_learning"]["epochs"],
        learning_rate=config["metric_learning"]["learning_rate"],
        warmup_epochs=config["metric_learning"]["warmup_epochs"],
        batch_size=config["metric_learning"]["batch_size"],
        balance_power=config["metric_learning"]["balance_power"],
        augment=config["metric_learning"]["augment"],
        flip_as_new_identity=config["metric_learning"]["flip_as_new_identity"],
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
        threshold_grid=SIMILARITY_GRID,
        mixed_precision=config["metric_learning"]["mixed_precision"],
        seed=config["metric_learning"]["seed"],
    threads: config["metric_learning"]["threads"]
    resources:
        gpu=config["metric_learning"]["gpus"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/train_embedding.py"


rule embed:
    input:
        model=f"{R}/metric_learning/model.keras",
        array=metric_learning_input("{split}", "npy"),
        index=metric_learning_input("{split}", "csv"),
    output:
        embeddings=f"{R}/embeddings/{{split}}.npy",
        index=f"{R}/embeddings/{{split}}.csv",
    log:
        f"{R}/logs/embed/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/embed/{{split}}.tsv"
    params:
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
        "../workflow_scripts/embed.py"


rule add_to_catalogue:
    input:
        model=f"{R}/metric_learning/model.keras",
        labels=catalogue_additions_input("train.csv"),
        images=catalogue_additions_input("train"),
    output:
        embeddings=f"{R}/catalogue/additions.npy",
        index=f"{R}/catalogue/additions.csv",
        rejected=f"{R}/catalogue/rejected.csv",
        images=f"{R}/catalogue/additions_images.npy",
    log:
        f"{R}/logs/add_to_catalogue.log",
    benchmark:
        f"{R}/benchmarks/add_to_catalogue.tsv"
    params:
        input_kind=config["metric_learning"]["input"],
        size=config["preprocess"]["size"],
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
        "../workflow_scripts/add_to_catalogue.py"


rule identify_by_retrieval:
    input:
        train=f"{R}/embeddings/train.npy",
        train_index=f"{R}/embeddings/train.csv",
        test=f"{R}/embeddings/test.npy",
        test_index=f"{R}/embeddings/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        additions=catalogue_additions_output(),
    output:
        validation=f"{R}/predictions/metric_learning/validation.csv",
        test=f"{R}/predictions/metric_learning/test.csv",
        threshold_curve=f"{R}/metric_learning/new_whale_threshold.csv",
    log:
        f"{R}/logs/identify_by_retrieval.log",
    benchmark:
        f"{R}/benchmarks/identify_by_retrieval.tsv"
    params:
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
        threshold_grid=SIMILARITY_GRID,
        aggregate=config["metric_learning"]["aggregate"],
        top_k=config["metric_learning"]["top_k"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/identify_by_retrieval.py"
