"""Rule review_wildbook: the survey's photos, encounters and decisions as Wildbook's bulk-import spreadsheet."""

import pandas as pd

from whaleid.identification.search import read_encounters, read_reviewed
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.review.wildbook import (
    INDIVIDUAL_ID,
    OCCURRENCE_ID,
    YEAR,
    survey_photos,
    wildbook_import_table,
    write_wildbook_import,
)

log = log_to_file(snakemake.log[0])
i, p = snakemake.input, snakemake.params
manifest = read_table(i.manifest)
test_images = manifest.loc[manifest["split"] == "test", "image"].tolist()
encounters = read_encounters(i.encounters[0] if i.encounters else None, test_images)
photos = survey_photos(test_images, read_table(i.captures), read_reviewed(i.reviewed), encounters)
table = wildbook_import_table(photos, genus=p.genus, specific_epithet=p.specific_epithet,
                              location_id=p.location_id or "", occurrence_prefix=p.occurrence_prefix)
# the individual's column is left out where no photo is decided yet
individuals = table.get(INDIVIDUAL_ID, pd.Series(dtype=str))
log.info("%d Wildbook encounters of %d photos in %d sightings, %d with an individual, %d with a year",
         len(table), len(photos), table[OCCURRENCE_ID].nunique(), (individuals != "").sum(), table[YEAR].notna().sum())
if not p.location_id:
    log.warning("no wildbook.location_id in the config: Wildbook's importer asks for each encounter's location")
write_wildbook_import(table, snakemake.output.spreadsheet)
