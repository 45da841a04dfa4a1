"""Rule demo_dataset: generate the embedded demo dataset."""

from pathlib import Path

from whaleid.demo.dataset import generate_demo_dataset
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
out_dir = Path(snakemake.output.train_csv).parent
stats = generate_demo_dataset(out_dir, **snakemake.params.settings, threads=snakemake.threads)
log.info("demo dataset written to %s: %s", out_dir, stats)
