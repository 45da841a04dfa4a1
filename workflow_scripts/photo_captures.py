"""Rule photo_captures: when and where each test photo was taken, from its EXIF."""

from pathlib import Path

from whaleid.data.photo_metadata import capture_table
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table

log = log_to_file(snakemake.log[0])
manifest = read_table(snakemake.input.manifest)
images = manifest.loc[manifest["split"] == "test", "image"].tolist()
captures = capture_table([Path(snakemake.input.test, image) for image in images], images, n_jobs=snakemake.threads)
timed, placed = (captures["taken_at"] != "").sum(), captures["latitude"].notna().sum()
log.info("%d test photos: %d with a capture time, %d with a GPS position", len(captures), timed, placed)
for problem, count in captures.loc[captures["problem"] != "", "problem"].value_counts().head(10).items():
    log.info("%d without a time: %s", count, problem)
write_csv(captures, snakemake.output.captures)
