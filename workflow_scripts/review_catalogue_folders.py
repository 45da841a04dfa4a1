"""Rule review_catalogue_folders: the catalogue written as a folder per individual, next season's catalogue."""

from whaleid.data.folders import export_catalogue
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table

log = log_to_file(snakemake.log[0])
i = snakemake.input
catalogue = read_table(i.catalogue)
copied = export_catalogue(catalogue, {"train": i.train, "test": i.test}, snakemake.output.folders)
log.info("%d photos of %d individuals in %s, %d of them copied (no hard link across file systems)",
         len(catalogue), catalogue["id"].nunique(), snakemake.output.folders, copied)
