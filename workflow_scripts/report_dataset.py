"""Rule report_dataset: the report's figure and table of what the data holds."""

from whaleid.files import write_csv
from whaleid.logs import log_to_file
from whaleid.report_figures import dataset_figure, dataset_table
from whaleid.tables import read_table

log = log_to_file(snakemake.log[0])
manifest = read_table(snakemake.input.manifest)
split = read_table(snakemake.input.split)
table = dataset_table(manifest, read_table(snakemake.input.rejected), split)
log.info("\n%s", table.to_string(index=False))
dataset_figure(manifest, split, snakemake.output.figure)
write_csv(table, snakemake.output.table)
