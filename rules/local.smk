# Identification by local features, with no training: SIFT keypoints of every photo, a
# shortlist of individuals by descriptor voting, a geometric check of each (HotSpotter's way).


rule local_keypoints:
    input:
        cache=f"{R}/preprocess/{{split}}.npy",
        index=f"{R}/preprocess/{{split}}.csv",
    output:
        keypoints=f"{R}/local/keypoints/{{split}}.npy",
        index=f"{R}/local/keypoints/{{split}}.csv",
    log:
        f"{R}/logs/local_keypoints/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/local_keypoints/{{split}}.tsv"
    params:
        settings=stage_settings(settings.KeypointSettings),
        # images per parallel task and resume checkpoint, as for preprocessing
        chunk_size=config["preprocess"]["chunk_size"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_keypoints.py"


rule local_identify:
    input:
        train=f"{R}/local/keypoints/train.npy",
        train_index=f"{R}/local/keypoints/train.csv",
        test=f"{R}/local/keypoints/test.npy",
        test_index=f"{R}/local/keypoints/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
    output:
        **identification_output("local"),
        # every query's verified shortlist, which the fused method reads
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
    log:
        f"{R}/logs/local_identify.log",
    benchmark:
        f"{R}/benchmarks/local_identify.tsv"
    params:
        image_size=config["local"]["image_size"],
        settings=stage_settings(settings.MatchSettings),
        thresholds=config["local"]["new_whale_thresholds"],
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
        # the configured count, not the cores this machine hands the job: faiss's search and
        # k-means sum in another order on another number of threads
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_identify.py"
