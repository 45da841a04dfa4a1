"""Rule catalogue_folders: a catalogue kept as a folder per individual, linked as the playground layout."""

from pathlib import Path

from whaleid.data.folders import link_as_playground, read_folders
from whaleid.io.logs import log_to_file

log = log_to_file(snakemake.log[0])
i, o = snakemake.input, snakemake.output
layout = read_folders(i.catalogue, i.queries)
log.info("data_layout %s: %d photos of %d individuals in %s, %d photos to identify in %s",
         snakemake.params.layout, len(layout.catalogue), layout.catalogue["id"].nunique(), i.catalogue,
         len(layout.queries), i.queries)
for row in layout.rejected:
    log.warning("left out %s: %s", row["source"], row["reason"])
link_as_playground(layout, Path(o.train_csv).parent)
