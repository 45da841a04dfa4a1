"""Rule ingest: check the dataset and write the manifest and the rejection report."""

from pathlib import Path

import pandas as pd

from whaleid.data.ingest import build_manifest
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table

log = log_to_file(snakemake.log[0])
manifest, rejected = build_manifest(
    Path(snakemake.input.train_csv).parent,
    max_pixels=snakemake.params.max_pixels,
    max_rejected_fraction=snakemake.params.max_rejected_fraction,
    n_jobs=snakemake.threads,
)
# the folders layout's entries that are not photos (rule catalogue_folders), reported with the rest
for layout_rejected in snakemake.input.layout_rejected:
    left_out = read_table(layout_rejected).assign(row=pd.NA).astype({"row": "Int64"})
    rejected = pd.concat([left_out, rejected], ignore_index=True)
for row in rejected.itertuples():
    log.warning("rejected %s (%s row %s): %s", row.image, row.source, row.row, row.reason)
log.info("%d train and %d test images usable, %d rejections",
         (manifest["split"] == "train").sum(), (manifest["split"] == "test").sum(), len(rejected))
write_csv(rejected, snakemake.output.rejected)
write_csv(manifest, snakemake.output.manifest)
