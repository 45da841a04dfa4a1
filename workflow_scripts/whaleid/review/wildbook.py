"""The run's test photos as a Wildbook bulk import: the spreadsheet researchers upload with the photos.

Researchers keep their catalogues in Wildbook (Flukebook and the other species' instances), which
takes a survey as a bulk-import spreadsheet: one row a Wildbook *Encounter* (the photos of one
animal at one sighting, in ``Encounter.mediaAsset0``, ``Encounter.mediaAsset1``, ...), grouped into
*Occurrences* (sightings) by ``Occurrence.occurrenceID``. `wildbook_import_table` makes it from the
test photos and what was decided about them:

- a whaleid encounter (the photos of one sighting) is one Occurrence, and its id the occurrence's;
- within it, the photos of one individual are one row with that ``MarkedIndividual.individualID``,
  and its undecided photos one more row without one (whaleid takes an encounter's photos for one
  animal, so they are not split further);
- a photo of no encounter is a row, and an Occurrence, of its own (`lone_occurrence_id`).

A row's date and time are those of its earliest photo that has one, and its position that photo's
or else the next one's with GPS (the photos' EXIF), so that both describe the same moment; species
and location come from the config. A row without a date is left without one: Wildbook requires a
year, which the researcher then fills in on the import's review page.

`write_wildbook_import` writes the table as the importer reads it: CSV, UTF-8 with a byte-order
mark. numpy and pandas only.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.io.files import atomic_output
from whaleid.vocabulary import NEW_WHALE

# What `wildbook_import_table` reads: one row a test photo.
PHOTO_COLUMNS = ("image", "encounter", "id", "taken_at", "latitude", "longitude")

# The importer's column names. Wildbook (WildMeOrg/Wildbook) reads them in its bulk import,
# frontend/src/pages/BulkImport/BulkImportSpreadsheet.jsx (a .csv or .xlsx; it renames Occurrence.* to
# Sighting.*, which src/main/java/org/ecocean/api/bulk/BulkValidator.java then checks against its
# FIELD_NAMES), and in the older src/main/java/org/ecocean/servlet/importer/StandardImport.java (.xlsx
# only), which reads the same names. They are case-sensitive. The order is that of the importer's field
# list, allColumns_sighting in frontend/src/pages/BulkImport/BulkImportConstants.js, the photos first.
MEDIA_ASSET = "Encounter.mediaAsset{}"
INDIVIDUAL_ID = "MarkedIndividual.individualID"
OCCURRENCE_ID = "Occurrence.occurrenceID"
LOCATION_ID = "Encounter.locationID"
LATITUDE = "Encounter.decimalLatitude"
LONGITUDE = "Encounter.decimalLongitude"
YEAR = "Encounter.year"
MONTH = "Encounter.month"
DAY = "Encounter.day"
HOUR = "Encounter.hour"
MINUTES = "Encounter.minutes"
GENUS = "Encounter.genus"
SPECIFIC_EPITHET = "Encounter.specificEpithet"
ENCOUNTER_COLUMNS = (INDIVIDUAL_ID, OCCURRENCE_ID, LOCATION_ID, LATITUDE, LONGITUDE, YEAR, MONTH, DAY, HOUR,
                     MINUTES, GENUS, SPECIFIC_EPITHET)
# Left out where no row has a value: Wildbook's guide asks that "fields without data should be removed
# from your spreadsheet prior to import to prevent errors" (WildMeOrg/wildbook-docs,
# _sources/data/bulk-import-beta.md). The rest it requires (BulkValidator.FIELD_NAMES_REQUIRED; and
# Encounter.year and Encounter.locationID in frontend/src/pages/BulkImport/BulkImportStore.js), so they
# stay, empty or not, where the researcher will see what is missing.
OPTIONAL_COLUMNS = (INDIVIDUAL_ID, LATITUDE, LONGITUDE, MONTH, DAY, HOUR, MINUTES)

LONE_OCCURRENCE_PREFIX = "photo-"


def lone_occurrence_id(image: str) -> str:
    """The occurrence id of a photo of no encounter: "photo-" + its name without the extension
    (e.g. "0a1b2c.jpg" -> "photo-0a1b2c")."""
    return LONE_OCCURRENCE_PREFIX + posixpath.splitext(image)[0]


@dataclass(frozen=True)
class _Photo:
    image: str
    # the local date and time on the camera's clock, as written (a time zone is dropped, not applied)
    taken: datetime | None
    has_time: bool
    position: tuple[float, float] | None

    def order(self) -> tuple:
        """Earliest first; on one day, a photo with only a date after those with a time; photos
        without a date last, by name."""
        if self.taken is None:
            return (1, self.image)
        return (0, self.taken.date(), not self.has_time, self.taken.time(), self.image)


def _text(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()


def _taken(text: str, image: str) -> tuple[datetime | None, bool]:
    if not text:
        return None, False
    try:
        taken = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"photo {image}: taken_at {text!r} is not an ISO 8601 date or time "
                         "(e.g. 2019-07-04T10:32:05)") from None
    try:
        date.fromisoformat(text)
        has_time = False
    except ValueError:
        has_time = True
    # Wildbook's year..minutes are the sighting's local date and time, which is what EXIF's clock holds
    return taken.replace(tzinfo=None), has_time


def _coordinate(value, name: str, image: str, limit: float) -> float | None:
    if _text(value) == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"photo {image}: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"photo {image}: {name} {number} is not within -{limit:g} to {limit:g} degrees")
    return number


def _position(latitude, longitude, image: str) -> tuple[float, float] | None:
    """The photo's GPS position, or None where it lacks either coordinate (Wildbook takes both or none)."""
    latitude = _coordinate(latitude, "latitude", image, 90)
    longitude = _coordinate(longitude, "longitude", image, 180)
    return None if latitude is None or longitude is None else (latitude, longitude)


def _required_name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"no {what}: Wildbook's bulk import requires one for every encounter")
    return value


def _checked_species(genus: str, specific_epithet: str) -> tuple[str, str]:
    genus, specific_epithet = _required_name(genus, "genus"), _required_name(specific_epithet, "specific epithet")
    # Wildbook matches the taxonomy case-sensitively against its own list ("Megaptera novaeangliae")
    if not (genus[0].isupper() and specific_epithet[0].islower()):
        raise ValueError(f"species {genus!r} {specific_epithet!r}: Wildbook expects the genus capitalised and "
                         "the specific epithet in lower case, as its taxonomy list writes them")
    return genus, specific_epithet


def _photos(photos: pd.DataFrame) -> Iterable[tuple[str, str, _Photo]]:
    """(encounter, individual id, photo) of each row of `photos`, checked."""
    missing = [c for c in PHOTO_COLUMNS if c not in photos.columns]
    if missing:
        raise ValueError(f"photos: no {', '.join(missing)} column(s): expected {', '.join(PHOTO_COLUMNS)}")
    seen = set()
    for image, encounter, individual, taken_at, latitude, longitude in zip(
            *(photos[c].tolist() for c in PHOTO_COLUMNS)):
        image, individual = _text(image), _text(individual)
        if not image:
            raise ValueError("photos: a row without an image name")
        if image in seen:
            raise ValueError(f"photos: {image} is listed twice")
        seen.add(image)
        if individual == NEW_WHALE:
            raise ValueError(f"photo {image}: {NEW_WHALE} is no individual: give it a new individual's id, or none")
        taken, has_time = _taken(_text(taken_at), image)
        yield _text(encounter), individual, _Photo(image, taken, has_time, _position(latitude, longitude, image))


def survey_photos(test_images: Sequence[str], captures: pd.DataFrame, identified: pd.DataFrame,
                  encounters: Mapping[str, str]) -> pd.DataFrame:
    """What `wildbook_import_table` reads, of each of `test_images`: its encounter (`encounters`,
    photo: encounter id), the individual a person decided it is (`identified`: image, id, the
    confirmed and new photos) and its capture time and position (`captures`: image, taken_at,
    latitude, longitude, as whaleid.data.photo_metadata.capture_table reads them from EXIF)."""
    photos = pd.DataFrame({"image": list(test_images)})
    photos["encounter"] = photos["image"].map(encounters).fillna("")
    # an encounter of one photo (found from EXIF, every photo is in one) is a photo of none
    alone = photos.groupby("encounter")["image"].transform("size") == 1
    photos.loc[alone, "encounter"] = ""
    photos["id"] = photos["image"].map(dict(zip(identified["image"], identified["id"]))).fillna("")
    exif = captures.set_index("image")
    photos["taken_at"] = photos["image"].map(exif["taken_at"]).fillna("")
    for column in ("latitude", "longitude"):
        photos[column] = pd.to_numeric(photos["image"].map(exif[column]), errors="coerce").astype(float)
    return photos


def wildbook_import_table(photos: pd.DataFrame, *, genus: str, specific_epithet: str, location_id: str,
                          occurrence_prefix: str = "") -> pd.DataFrame:
    """The bulk-import spreadsheet of the test `photos`, one row a Wildbook Encounter.

    `photos`: one row a test photo, with columns image (the file name, which the import is given the
    photo by), encounter (whaleid's encounter id; empty for a photo of none), id (the individual a
    person confirmed or named, or the answer auto-accepted; empty while undecided), taken_at (ISO 8601;
    may be empty), latitude and longitude (degrees; may be NaN). `genus`, `specific_epithet` and
    `location_id` are the survey's, as the Wildbook instance lists them; `occurrence_prefix` starts
    every occurrence id: Wildbook adds a row to an existing occurrence of the same id, so ids that
    repeat across surveys (an encounter "E1" each season) need one, such as the survey's name.

    Columns: ``Encounter.mediaAsset0`` .. as many as the largest row has photos (its photos by
    `_Photo.order`, empty where a row has fewer), then `ENCOUNTER_COLUMNS` less those of
    `OPTIONAL_COLUMNS` that no row fills. Rows by occurrence id, then individual id, the undecided
    row last. Date parts are integers (nullable), coordinates floats (NaN where unknown).

    Raises ValueError naming the column, photo or setting of the first wrong input: a missing column,
    an unnamed or repeated photo, a photo of new_whale, a taken_at that is not ISO 8601, a coordinate
    out of range, an empty species, or a photo of no encounter whose occurrence id
    (`lone_occurrence_id`) is another's.
    """
    genus, specific_epithet = _checked_species(genus, specific_epithet)
    # Wildbook's new importer requires a location, and asks for it on its review page where the
    # spreadsheet has none: a run whose config names none still exports its sightings
    location_id = _text(location_id)
    groups: dict[tuple[str, str], list[_Photo]] = {}
    of_encounters, lone_of = set(), {}   # the encounters' occurrence ids; a lone occurrence id: its photo
    for encounter, individual, photo in _photos(photos):
        if encounter:
            occurrence = occurrence_prefix + encounter
            of_encounters.add(occurrence)
        else:
            occurrence = occurrence_prefix + lone_occurrence_id(photo.image)
            if occurrence in lone_of:
                raise ValueError(f"photos {lone_of[occurrence]} and {photo.image}, of no encounter, would both be "
                                 f"occurrence {occurrence!r}: rename one")
            lone_of[occurrence] = photo.image
        groups.setdefault((occurrence, individual), []).append(photo)
    for occurrence in sorted(of_encounters & set(lone_of)):
        raise ValueError(f"photo {lone_of[occurrence]}, of no encounter, would be occurrence {occurrence!r}, which "
                         "is an encounter's id: rename the encounter or the photo")

    width = max((len(group) for group in groups.values()), default=1)
    media_columns = [MEDIA_ASSET.format(n) for n in range(width)]
    rows = []
    for occurrence, individual in sorted(groups, key=lambda key: (key[0], key[1] == "", key[1])):
        row_photos = sorted(groups[occurrence, individual], key=_Photo.order)
        images = [photo.image for photo in row_photos]
        dated = next((photo for photo in row_photos if photo.taken is not None), None)
        placed = next((photo for photo in row_photos if photo.position is not None), None)
        day = (dated.taken.year, dated.taken.month, dated.taken.day) if dated else (None,) * 3
        time = (dated.taken.hour, dated.taken.minute) if dated and dated.has_time else (None,) * 2
        position = placed.position if placed else (math.nan,) * 2
        rows.append([*images, *[""] * (width - len(images)), individual, occurrence, location_id, *position, *day,
                     *time, genus, specific_epithet])
    table = pd.DataFrame(rows, columns=[*media_columns, *ENCOUNTER_COLUMNS])
    table = table.astype({**dict.fromkeys((YEAR, MONTH, DAY, HOUR, MINUTES), "Int64"),
                          **dict.fromkeys((LATITUDE, LONGITUDE), float)})
    empty = [c for c in OPTIONAL_COLUMNS if table[c].replace("", pd.NA).isna().all()]
    return table.drop(columns=empty)


def write_wildbook_import(table: pd.DataFrame, path: str | Path) -> None:
    """Write `table` (`wildbook_import_table`) to `path`, a .csv, atomically: UTF-8 with a byte-order
    mark, an empty cell where a value is unknown, numbers in plain decimals.

    The mark is there because the bulk import reads the file with SheetJS, which takes a CSV without
    one for the local code page (SheetJS/sheetjs issues 2081, 1019): a name with an accent would come
    out garbled. Decimals are plain because its check of a position, latlongRule in
    frontend/src/pages/BulkImport/BulkImportConstants.js, takes "0.00001" but not "1e-05". Raises
    ValueError for a path that is not a .csv."""
    if Path(path).suffix.lower() != ".csv":
        raise ValueError(f"{path}: the Wildbook import is written as a .csv (the bulk import reads .csv or .xlsx)")
    written = table.copy()
    for column in written.columns[[pd.api.types.is_float_dtype(dtype) for dtype in written.dtypes]]:
        written[column] = [np.format_float_positional(x, trim="-") if math.isfinite(x) else ""
                           for x in written[column]]
    with atomic_output(path) as tmp:
        written.to_csv(tmp, index=False, encoding="utf-8-sig")
