"""Rule validation_split: hold out part of train, mirroring the test set."""

import pandas as pd

from whaleid.data.validation_split import make_validation_split
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
manifest = pd.read_csv(snakemake.input.manifest, dtype={"id": str}, keep_default_na=False)
split = make_validation_split(
    manifest[manifest["split"] == "train"],
    single_image_fraction=snakemake.params.single_image_fraction,
    new_whale_fraction=snakemake.params.new_whale_fraction,
    seed=snakemake.params.seed,
)
held_out = split[split["subset"] == "validation"]
log.info("validation: %d images, %d of them new_whale", len(held_out), (held_out["truth"] == "new_whale").sum())
write_csv(split, snakemake.output.split)
