# The figures and tables of the Snakemake report (`snakemake --report results/report.html`), under
# results/report/: the data, preprocessing, training, the validation curves of each method's
# chosen setting, and what every job cost. report_figures() and REPORT_RESOURCES in common.smk list
# them for rule all.

# Each method's curve of validation MAP@5 against the setting it chose on validation: the
# baseline's pHash duplicate distance, the models' new_whale threshold (and duplicate distance).
THRESHOLD_CURVES = {method: identification_output(method)["threshold_curve"] for method in METHODS}


# Seconds of plotting on small files: run by Snakemake itself, never submitted to a cluster.
localrules:
    report_dataset,
    report_preprocessing,
    report_training,
    report_thresholds,
    report_calibration,
    report_gallery,
    report_resources,


rule report_dataset:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        rejected=f"{R}/ingest/rejected.csv",
        split=f"{R}/validation/split.csv",
    output:
        figure=report(
            f"{R}/report/dataset.png",
            category="Data",
            caption="../report/dataset.rst",
            labels={"content": "dataset statistics", "kind": "figure"},
        ),
        table=report(
            f"{R}/report/dataset.csv",
            category="Data",
            caption="../report/dataset_table.rst",
            labels={"content": "key numbers", "kind": "table"},
        ),
    log:
        f"{R}/logs/report_dataset.log",
    benchmark:
        f"{R}/benchmarks/report_dataset.tsv"
    params:
        code=package_code("report_dataset.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_dataset.py"


rule report_preprocessing:
    input:
        cache=f"{R}/preprocess/train.npy",
        index=f"{R}/preprocess/train.csv",
        # the original photos, named by the cache's index (the manifest's train rows)
        images=f"{PHOTOS}/train",
    output:
        figure=report(
            f"{R}/report/preprocessing.png",
            category="Preprocessing",
            caption="../report/preprocessing.rst",
            labels={"content": "examples", "kind": "figure"},
        ),
    log:
        f"{R}/logs/report_preprocessing.log",
    benchmark:
        f"{R}/benchmarks/report_preprocessing.tsv"
    params:
        code=package_code("report_preprocessing.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_preprocessing.py"


rule report_training:
    input:
        history=f"{R}/{{model}}/history.csv",
    output:
        figure=report(
            f"{R}/report/training/{{model}}.png",
            category="Training",
            caption="../report/training.rst",
            labels={"model": "{model}", "kind": "figure"},
        ),
    log:
        f"{R}/logs/report_training/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/report_training/{{model}}.tsv"
    wildcard_constraints:
        model="autoencoder|classifier|metric_learning",
    params:
        code=package_code("report_training.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_training.py"


rule report_thresholds:
    input:
        curve=lambda wildcards: THRESHOLD_CURVES[wildcards.method],
    output:
        figure=report(
            f"{R}/report/thresholds/{{method}}.png",
            category="Thresholds",
            caption="../report/thresholds.rst",
            labels={"method": "{method}", "kind": "figure"},
        ),
    log:
        f"{R}/logs/report_thresholds/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/report_thresholds/{{method}}.tsv"
    wildcard_constraints:
        method="|".join(THRESHOLD_CURVES),
    params:
        code=package_code("report_thresholds.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_thresholds.py"


# How sure a calibrated method is on validation: its probabilities against how often they were
# right, and "new individual" precision and recall against the new_whale threshold.
rule report_calibration:
    input:
        unpack(calibration_input),
        split=f"{R}/validation/split.csv",
        curve=lambda wildcards: THRESHOLD_CURVES[wildcards.method],
    output:
        figure=report(
            f"{R}/report/calibration/{{method}}.png",
            category="Calibration",
            caption="../report/calibration.rst",
            labels={"method": "{method}", "kind": "figure"},
        ),
        table=f"{R}/report/calibration/{{method}}.csv",
    log:
        f"{R}/logs/report_calibration/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/report_calibration/{{method}}.tsv"
    wildcard_constraints:
        method="local|fused",
    params:
        code=package_code("report_calibration.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_calibration.py"


# Pages for people to look at before they trust a score: query photos beside a method's five
# answers, each shown by the catalogue photo that speaks for it, with the method's score; for the
# methods that verify keypoints, with the inlier matches drawn.
rule report_gallery:
    input:
        unpack(gallery_input),
        split=f"{R}/validation/split.csv",
        # the thumbnails: the preprocessed squares, whatever the method read
        train_images=f"{R}/preprocess/train.npy",
        train_images_index=f"{R}/preprocess/train.csv",
        test_images=f"{R}/preprocess/test.npy",
        test_images_index=f"{R}/preprocess/test.csv",
        test_truth=test_truth_input(),
    output:
        best_hits=report(
            f"{R}/report/gallery/{{method}}_best_hits.html",
            category="Candidate gallery",
            caption="../report/gallery.rst",
            labels={"method": "{method}", "page": "best hits"},
        ),
        worst_misses=report(
            f"{R}/report/gallery/{{method}}_worst_misses.html",
            category="Candidate gallery",
            caption="../report/gallery.rst",
            labels={"method": "{method}", "page": "worst misses"},
        ),
    log:
        f"{R}/logs/report_gallery/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/report_gallery/{{method}}.tsv"
    wildcard_constraints:
        method="|".join(GALLERY_METHODS),
    params:
        code=package_code("report_gallery.py"),
        gallery_size=config["report"]["gallery_size"],
        matching=gallery_params,
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_gallery.py"


rule report_resources:
    input:
        # Benchmark files are no job's output, so they cannot be inputs. Instead this job waits
        # for the run's final products and every other figure, by when every other job of the
        # run has finished and written its benchmark; the script then reads the whole folder
        # (benchmarks of earlier runs' jobs whose outputs are still current included).
        final=[path for path in get_final_output() if path not in REPORT_RESOURCES],
    output:
        table=report(
            f"{R}/report/resources.csv",
            category="Resources",
            caption="../report/resources_table.rst",
            labels={"content": "per job", "kind": "table"},
        ),
        figure=report(
            f"{R}/report/resources.png",
            category="Resources",
            caption="../report/resources.rst",
            labels={"content": "per job", "kind": "figure"},
        ),
    log:
        f"{R}/logs/report_resources.log",
    benchmark:
        f"{R}/benchmarks/report_resources.tsv"
    params:
        code=package_code("report_resources.py"),
        benchmarks=f"{R}/benchmarks",
        # its own, from an earlier run: left out rather than reported stale
        own_benchmark=f"{R}/benchmarks/report_resources.tsv",
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/report_resources.py"
