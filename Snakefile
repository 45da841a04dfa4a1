# whaleid: identify individual whales from photos of their tail flukes.
# The stages, in order; `rules/common.smk` holds the config checks and the paths they share.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/preprocess.smk"
include: "rules/validation.smk"
include: "rules/baseline.smk"
include: "rules/submission.smk"


rule all:
    input:
        get_final_output(),
    default_target: True
