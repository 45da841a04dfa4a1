# Duplicates first, then new_whale, then the commonest ids: the floor every model must beat.


rule baseline_identify:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        split=f"{R}/validation/split.csv",
        reviewed=reviewed_input(),
        encounters=encounters_input(),
    output:
        **identification_output("baseline"),
    log:
        f"{R}/logs/baseline_identify.log",
    benchmark:
        f"{R}/benchmarks/baseline_identify.tsv"
    params:
        code=package_code("baseline_identify.py"),
        max_distance=config["baseline"]["phash_max_distance"],
        candidates=config["baseline"]["phash_max_distance_candidates"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/baseline_identify.py"
