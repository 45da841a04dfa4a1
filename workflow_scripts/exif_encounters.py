"""Rule exif_encounters: the test photos of one sighting, found from their capture times and positions."""

from whaleid.data.encounters import group_encounters, summary
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table

log = log_to_file(snakemake.log[0])
p = snakemake.params
encounters = group_encounters(read_table(snakemake.input.captures), p.max_gap_minutes, p.max_distance_m)
log.info("max_gap_minutes %s, max_distance_m %s: %s", p.max_gap_minutes, p.max_distance_m, summary(encounters))
write_csv(encounters, snakemake.output.encounters)
