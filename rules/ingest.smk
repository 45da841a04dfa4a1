# Check train.csv and every image; write the manifest later stages read instead of the folder.
# A catalogue kept as a folder per individual is first linked as the playground layout.


if DATA_LAYOUT == "folders":

    rule catalogue_folders:
        input:
            catalogue=CATALOGUE,
            queries=QUERIES,
            individuals=individual_folders(),
        output:
            train_csv=f"{PHOTOS}/train.csv",
            train=directory(f"{PHOTOS}/train"),
            test=directory(f"{PHOTOS}/test"),
            # the folders' entries that are not photos to read, each with its reason
            rejected=f"{PHOTOS}/rejected.csv",
        log:
            f"{R}/logs/catalogue_folders.log",
        benchmark:
            f"{R}/benchmarks/catalogue_folders.tsv"
        params:
            code=package_code("catalogue_folders.py"),
            layout=f"{config['data_layout']} (folders)",
        conda:
            "../envs/whaleid.yaml"
        script:
            "../workflow_scripts/catalogue_folders.py"


rule ingest:
    input:
        train_csv=f"{PHOTOS}/train.csv",
        train_dir=f"{PHOTOS}/train",
        test_dir=f"{PHOTOS}/test",
        sample_submission=sample_submission_input(),
        layout_rejected=[f"{PHOTOS}/rejected.csv"] if DATA_LAYOUT == "folders" else [],
    output:
        manifest=f"{R}/ingest/manifest.csv",
        rejected=f"{R}/ingest/rejected.csv",
    log:
        f"{R}/logs/ingest.log",
    benchmark:
        f"{R}/benchmarks/ingest.tsv"
    params:
        code=package_code("ingest.py"),
        max_pixels=config["ingest"]["max_pixels"],
        max_rejected_fraction=config["ingest"]["max_rejected_fraction"],
    threads: config["ingest"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/ingest.py"


# When and where each test photo was taken, from its EXIF: the encounters below, and the date and
# position of the Wildbook export. Only the files' headers are read.
rule photo_captures:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        test=f"{PHOTOS}/test",
    output:
        captures=f"{R}/ingest/captures.csv",
    log:
        f"{R}/logs/photo_captures.log",
    benchmark:
        f"{R}/benchmarks/photo_captures.tsv"
    params:
        code=package_code("photo_captures.py"),
    threads: config["ingest"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/photo_captures.py"


if encounters_from_exif():

    rule exif_encounters:
        input:
            captures=f"{R}/ingest/captures.csv",
        output:
            encounters=f"{R}/ingest/encounters.csv",
        log:
            f"{R}/logs/exif_encounters.log",
        benchmark:
            f"{R}/benchmarks/exif_encounters.tsv"
        params:
            code=package_code("exif_encounters.py"),
            max_gap_minutes=config["encounters"]["max_gap_minutes"],
            max_distance_m=config["encounters"]["max_distance_m"],
        conda:
            "../envs/whaleid.yaml"
        script:
            "../workflow_scripts/exif_encounters.py"
