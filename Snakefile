# whaleid: identify individual whales from photos of their tail flukes.
# The stages, in order; `rules/common.smk` holds the config checks and the paths they share.

import os

from snakemake.utils import min_version

min_version("9.0")


# Found beside this file, not in the working directory, so `--directory` and several results
# folders all start from the same settings; `--configfile` files are merged over it.
configfile: os.path.join(workflow.basedir, "config.yaml")


# `snakemake --report results/report.html`: the outputs flagged report(...) in rules/, by stage.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/preprocess.smk"
include: "rules/autoencoder.smk"
include: "rules/validation.smk"
include: "rules/baseline.smk"
include: "rules/classifier.smk"
include: "rules/metric_learning.smk"
include: "rules/local.smk"
include: "rules/fused.smk"
include: "rules/submission.smk"
include: "rules/review.smk"
include: "rules/report.smk"


# Run by Snakemake itself, never submitted to a cluster: stages of seconds, where queueing would
# cost more than the work (a SLURM job costs at least the plugin's first status check, 40 s),
# and stage_weights, which needs the submit host's internet. local_verifier is one of them at
# any catalogue size: it learns from at most verifier.max_queries fit photos' pairs (11 s and
# 0.2 GB on the right whales' 1,089).
localrules:
    all,
    demo_dataset,
    validation_split,
    baseline_identify,
    metric_learning_identify,
    fused_identify,
    local_keypoints,
    local_verifier,
    local_identify,
    local_shortlist_recall,
    submission,
    score,
    collect_scores,
    chosen_submission,
    review_catalogue,
    stage_weights,


rule all:
    default_target: True
    input:
        get_final_output(),
