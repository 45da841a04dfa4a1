"""Rule review_catalogue: the decided test photos checked, and the catalogue they grow."""

from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.review.decisions import catalogue_table, individuals_table, read_decisions

log = log_to_file(snakemake.log[0])
i, o = snakemake.input, snakemake.output
split, manifest = read_table(i.split), read_table(i.manifest)
# every file checked before anything is written: nothing is half applied
reviewed = read_decisions(list(i.decisions), manifest.loc[manifest["split"] == "test", "image"], split["id"])
catalogue = catalogue_table(split, reviewed)
individuals = individuals_table(catalogue)
log.info("decisions: %s", reviewed["decision"].value_counts().to_dict() or "none")
log.info("catalogue: %d photos of %d individuals, %d of them new", len(catalogue), len(individuals),
         int(individuals["new"].sum()))
write_csv(reviewed, o.reviewed)
write_csv(catalogue, o.catalogue)
write_csv(individuals, o.individuals)
