"""Rule report_dataset: the report's figure and table of what the data holds."""

from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.report.figures import dataset_figure, dataset_table

log = log_to_file(snakemake.log[0])
manifest = read_table(snakemake.input.manifest)
split = read_table(snakemake.input.split)
table = dataset_table(manifest, read_table(snakemake.input.rejected), split)
log.info("\n%s", table.to_string(index=False))
dataset_figure(manifest, split, snakemake.output.figure)
write_csv(table, snakemake.output.table)
