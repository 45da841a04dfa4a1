# Identification by local features, with no training: SIFT keypoints of every photo, a
# shortlist of individuals by descriptor voting, a geometric check of each (HotSpotter's way).


rule extract_local_features:
    input:
        cache=f"{R}/preprocess/{{split}}.npy",
        index=f"{R}/preprocess/{{split}}.csv",
    output:
        features=f"{R}/local_features/{{split}}.npy",
        index=f"{R}/local_features/{{split}}.csv",
    log:
        f"{R}/logs/extract_local_features/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/extract_local_features/{{split}}.tsv"
    params:
        n_features=config["local"]["n_features"],
        image_size=config["local"]["image_size"],
        contrast_threshold=config["local"]["contrast_threshold"],
        border=config["local"]["border"],
        upright=config["local"]["upright"],
        # images per parallel task and resume checkpoint, as for preprocessing
        chunk_size=config["preprocess"]["chunk_size"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/extract_local_features.py"


rule identify_by_local_features:
    input:
        train=f"{R}/local_features/train.npy",
        train_index=f"{R}/local_features/train.csv",
        test=f"{R}/local_features/test.npy",
        test_index=f"{R}/local_features/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
    output:
        validation=f"{R}/predictions/local/validation.csv",
        test=f"{R}/predictions/local/test.csv",
        threshold_curve=f"{R}/local/new_whale_threshold.csv",
        # every query's verified shortlist, which the fused method reads
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
    log:
        f"{R}/logs/identify_by_local_features.log",
    benchmark:
        f"{R}/benchmarks/identify_by_local_features.tsv"
    params:
        image_size=config["local"]["image_size"],
        neighbours=config["local"]["neighbours"],
        nprobe=config["local"]["nprobe"],
        shortlist=config["local"]["shortlist"],
        photos_per_individual=config["local"]["photos_per_individual"],
        ratio=config["local"]["ratio"],
        transform=config["local"]["transform"],
        reprojection_error=config["local"]["reprojection_error"],
        ransac_iterations=config["local"]["ransac_iterations"],
        thresholds=config["local"]["new_whale_thresholds"],
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/identify_by_local_features.py"
