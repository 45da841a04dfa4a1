"""whaleid: the logic behind the workflow's rules, importable without Snakemake."""
