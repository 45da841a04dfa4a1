"""Rule report_resources: wall time and peak memory of every job, from the benchmark files.

Its inputs are only there to make it run last; it reads the benchmark folder itself.
"""

from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.report.figures import read_benchmarks, resources_figure

log = log_to_file(snakemake.log[0])
table = read_benchmarks(snakemake.params.benchmarks, exclude=[snakemake.params.own_benchmark])
log.info("%d benchmark files\n%s", len(table), table.to_string(index=False))
write_csv(table, snakemake.output.table)
resources_figure(table, snakemake.output.figure)
