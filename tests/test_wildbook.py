import csv

import numpy as np
import pandas as pd
import pytest

from whaleid.review.wildbook import (
    ENCOUNTER_COLUMNS,
    lone_occurrence_id,
    survey_photos,
    wildbook_import_table,
    write_wildbook_import,
)

SPECIES = {"genus": "Megaptera", "specific_epithet": "novaeangliae", "location_id": "Hawaii"}
NAN = np.nan


def survey(*rows) -> pd.DataFrame:
    """Test photos, one (image, encounter, id, taken_at, latitude, longitude) a row."""
    return pd.DataFrame(rows, columns=["image", "encounter", "id", "taken_at", "latitude", "longitude"])


def media(row: pd.Series) -> list[str]:
    return [row[c] for c in row.index if c.startswith("Encounter.mediaAsset") and row[c] != ""]


SIGHTINGS = survey(
    ("a.jpg", "E1", "w_A", "", NAN, NAN),
    ("b.jpg", "E1", "w_B", "", NAN, NAN),
    ("c.jpg", "E1", "w_A", "", NAN, NAN),
    ("d.jpg", "E2", "", "", NAN, NAN),
    ("e.jpg", "E2", "", "", NAN, NAN),
    ("f.jpg", "E2", "w_A", "", NAN, NAN),
    ("g.jpg", "", "w_C", "", NAN, NAN),
    ("h.jpg", "", "", "", NAN, NAN),
)


def test_an_encounter_is_an_occurrence_of_one_row_per_individual_and_one_for_its_undecided_photos():
    table = wildbook_import_table(SIGHTINGS, **SPECIES)
    rows = [(row["Occurrence.occurrenceID"], row["MarkedIndividual.individualID"], media(row))
            for _, row in table.iterrows()]
    assert rows == [
        ("E1", "w_A", ["a.jpg", "c.jpg"]),      # two individuals seen together: two rows, one occurrence
        ("E1", "w_B", ["b.jpg"]),
        ("E2", "w_A", ["f.jpg"]),
        ("E2", "", ["d.jpg", "e.jpg"]),         # the encounter's undecided photos: one row, no individual, last
        ("photo-g", "w_C", ["g.jpg"]),          # a photo of no encounter: a row and an occurrence of its own
        ("photo-h", "", ["h.jpg"]),
    ]


def test_the_rows_do_not_depend_on_the_order_of_the_photos():
    shuffled = SIGHTINGS.sample(frac=1, random_state=3).reset_index(drop=True)
    assert not shuffled["image"].equals(SIGHTINGS["image"])
    pd.testing.assert_frame_equal(wildbook_import_table(shuffled, **SPECIES),
                                  wildbook_import_table(SIGHTINGS, **SPECIES))


def test_media_asset_columns_widen_to_the_largest_row_and_shorter_rows_leave_theirs_empty():
    photos = survey(*[(f"p{n}.jpg", "E1", "w_A", "", NAN, NAN) for n in range(3)], ("q.jpg", "E1", "w_B", "", NAN, NAN))
    table = wildbook_import_table(photos, **SPECIES)
    assert [c for c in table.columns if c.startswith("Encounter.mediaAsset")] == [
        "Encounter.mediaAsset0", "Encounter.mediaAsset1", "Encounter.mediaAsset2"]
    assert table.loc[1, ["Encounter.mediaAsset0", "Encounter.mediaAsset1", "Encounter.mediaAsset2"]].tolist() == [
        "q.jpg", "", ""]


def test_a_row_takes_the_date_of_its_earliest_photo_with_one_and_the_position_from_that_moment():
    photos = survey(
        ("late.jpg", "E1", "w_A", "2019-07-04T11:05:00", 21.0, -157.0),
        ("early.jpg", "E1", "w_A", "2019-07-04T10:32:59", NAN, NAN),      # earliest, but no GPS
        ("next.jpg", "E1", "w_A", "2019-07-04T10:40:00", 20.5, -156.5),   # the next with GPS
        ("undated.jpg", "E1", "w_A", "", 19.0, -155.0),
        ("day.jpg", "E2", "w_B", "2019-07-05", NAN, NAN),                  # a date without a time
        ("zoned.jpg", "E3", "w_C", "2019-07-06T23:10:00-10:00", NAN, NAN), # kept on the camera's clock
        ("none.jpg", "E4", "w_D", "", NAN, NAN),
    )
    table = wildbook_import_table(photos, **SPECIES).set_index("Occurrence.occurrenceID")
    when = ["Encounter.year", "Encounter.month", "Encounter.day", "Encounter.hour", "Encounter.minutes"]
    assert table.loc["E1", when].tolist() == [2019, 7, 4, 10, 32]
    assert table.loc["E1", ["Encounter.decimalLatitude", "Encounter.decimalLongitude"]].tolist() == [20.5, -156.5]
    assert media(table.loc["E1"]) == ["early.jpg", "next.jpg", "late.jpg", "undated.jpg"]
    assert table.loc["E2", when[:3]].tolist() == [2019, 7, 5]
    assert table.loc["E2", when[3:]].isna().all()
    assert table.loc["E3", when].tolist() == [2019, 7, 6, 23, 10]
    assert table.loc["E4", when].isna().all()
    assert table.loc[["E2", "E3", "E4"], ["Encounter.decimalLatitude", "Encounter.decimalLongitude"]].isna().all().all()


def test_on_one_day_a_photo_with_a_time_gives_the_time_before_one_with_only_the_date():
    photos = survey(("dated.jpg", "E1", "w_A", "2019-07-04", NAN, NAN),
                    ("timed.jpg", "E1", "w_A", "2019-07-04T15:20", NAN, NAN),
                    ("earlier_day.jpg", "E2", "w_A", "2019-07-03", NAN, NAN),
                    ("later_day.jpg", "E2", "w_A", "2019-07-04T08:00", NAN, NAN))
    table = wildbook_import_table(photos, **SPECIES).set_index("Occurrence.occurrenceID")
    assert table.loc["E1", ["Encounter.day", "Encounter.hour", "Encounter.minutes"]].tolist() == [4, 15, 20]
    assert table.loc["E2", "Encounter.day"] == 3 and pd.isna(table.loc["E2", "Encounter.hour"])


def test_species_and_location_fill_every_row_and_the_columns_follow_the_importer():
    photos = survey(("a.jpg", "E1", "w_A", "2019-07-04T10:00", 20.0, -156.0), ("b.jpg", "", "", "", NAN, NAN))
    table = wildbook_import_table(photos, genus=" Megaptera ", specific_epithet="novaeangliae", location_id="Maui")
    assert table.columns.tolist() == ["Encounter.mediaAsset0", *ENCOUNTER_COLUMNS]
    assert (table["Encounter.genus"] == "Megaptera").all()
    assert (table["Encounter.specificEpithet"] == "novaeangliae").all()
    assert (table["Encounter.locationID"] == "Maui").all()


def test_optional_columns_no_row_fills_are_left_out_and_required_ones_stay():
    table = wildbook_import_table(survey(("a.jpg", "E1", "", "", NAN, NAN)), **SPECIES)
    assert table.columns.tolist() == ["Encounter.mediaAsset0", "Occurrence.occurrenceID", "Encounter.locationID",
                                      "Encounter.year", "Encounter.genus", "Encounter.specificEpithet"]
    assert table["Encounter.year"].isna().all()


def test_the_occurrence_prefix_starts_every_occurrence_id():
    table = wildbook_import_table(SIGHTINGS, **SPECIES, occurrence_prefix="maui2019-")
    assert table["Occurrence.occurrenceID"].unique().tolist() == [
        "maui2019-E1", "maui2019-E2", "maui2019-photo-g", "maui2019-photo-h"]
    assert lone_occurrence_id("0a1b2c.jpg") == "photo-0a1b2c"


def test_the_written_file_reads_back_with_exactly_the_importers_columns_and_values(tmp_path):
    photos = survey(("a.jpg", "E1", "Réunion-7", "2019-07-04T10:05:00", 0.00001, -156.25),
                    ("b.jpg", "E1", "Réunion-7", "", NAN, NAN),
                    ("c.jpg", "", "", "", NAN, NAN))
    table = wildbook_import_table(photos, **SPECIES)
    path = tmp_path / "out" / "wildbook_import.csv"
    write_wildbook_import(table, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfEncounter.mediaAsset0,Encounter.mediaAsset1,")
    with open(path, newline="", encoding="utf-8-sig") as file:
        header, *rows = list(csv.reader(file))
    assert header == ["Encounter.mediaAsset0", "Encounter.mediaAsset1", *ENCOUNTER_COLUMNS]
    assert [dict(zip(header, row)) for row in rows] == [
        {"Encounter.mediaAsset0": "a.jpg", "Encounter.mediaAsset1": "b.jpg",
         "MarkedIndividual.individualID": "Réunion-7", "Occurrence.occurrenceID": "E1",
         "Encounter.locationID": "Hawaii", "Encounter.decimalLatitude": "0.00001",
         "Encounter.decimalLongitude": "-156.25", "Encounter.year": "2019", "Encounter.month": "7",
         "Encounter.day": "4", "Encounter.hour": "10", "Encounter.minutes": "5",
         "Encounter.genus": "Megaptera", "Encounter.specificEpithet": "novaeangliae"},
        {"Encounter.mediaAsset0": "c.jpg", "Encounter.mediaAsset1": "", "MarkedIndividual.individualID": "",
         "Occurrence.occurrenceID": "photo-c", "Encounter.locationID": "Hawaii", "Encounter.decimalLatitude": "",
         "Encounter.decimalLongitude": "", "Encounter.year": "", "Encounter.month": "", "Encounter.day": "",
         "Encounter.hour": "", "Encounter.minutes": "", "Encounter.genus": "Megaptera",
         "Encounter.specificEpithet": "novaeangliae"}]
    assert [p.name for p in path.parent.iterdir()] == ["wildbook_import.csv"]   # no temporary file left


def test_the_import_is_written_only_as_a_csv(tmp_path):
    table = wildbook_import_table(SIGHTINGS, **SPECIES)
    with pytest.raises(ValueError, match=r"wildbook\.xlsx: the Wildbook import is written as a \.csv"):
        write_wildbook_import(table, tmp_path / "wildbook.xlsx")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("change, message", [
    (lambda p: p.drop(columns=["taken_at", "longitude"]), r"photos: no taken_at, longitude column\(s\)"),
    (lambda p: p.assign(image=["a.jpg", "a.jpg"]), r"photos: a\.jpg is listed twice"),
    (lambda p: p.assign(image=["a.jpg", ""]), r"photos: a row without an image name"),
    (lambda p: p.assign(id=["w_A", "new_whale"]), r"photo b\.jpg: new_whale is no individual"),
    (lambda p: p.assign(taken_at=["2019:07:04 10:32:05", ""]),
     r"photo a\.jpg: taken_at '2019:07:04 10:32:05' is not an ISO 8601 date or time"),
    (lambda p: p.assign(latitude=[95.0, NAN], longitude=[10.0, NAN]),
     r"photo a\.jpg: latitude 95.0 is not within -90 to 90 degrees"),
    (lambda p: p.assign(latitude=[10.0, NAN], longitude=["east", NAN]), r"photo a\.jpg: longitude 'east' is not a"),
    (lambda p: p.assign(encounter=["photo-b", ""]),
     r"photo b\.jpg, of no encounter, would be occurrence 'photo-b', which is an encounter's id"),
    (lambda p: p.assign(image=["b.png", "b.jpg"], encounter=["", ""]),
     r"photos b\.png and b\.jpg, of no encounter, would both be occurrence 'photo-b'"),
])
def test_wrong_photos_are_an_error_naming_what_is_wrong(change, message):
    photos = survey(("a.jpg", "E1", "w_A", "", NAN, NAN), ("b.jpg", "", "", "", NAN, NAN))
    wildbook_import_table(photos, **SPECIES)   # as given, the photos are fine
    with pytest.raises(ValueError, match=message):
        wildbook_import_table(change(photos), **SPECIES)


@pytest.mark.parametrize("settings, message", [
    ({"genus": " "}, r"no genus: Wildbook's bulk import requires one for every encounter"),
    ({"specific_epithet": ""}, r"no specific epithet"),
    ({"genus": "megaptera"}, r"species 'megaptera' 'novaeangliae': Wildbook expects the genus capitalised"),
    ({"specific_epithet": "Novaeangliae"}, r"the specific epithet in lower case"),
])
def test_a_missing_or_miswritten_species_or_location_is_an_error(settings, message):
    with pytest.raises(ValueError, match=message):
        wildbook_import_table(SIGHTINGS, **{**SPECIES, **settings})


def test_a_survey_without_a_location_is_exported_with_the_column_left_for_the_importer_to_ask():
    table = wildbook_import_table(survey(("a.jpg", "E1", "", "", NAN, NAN)), **{**SPECIES, "location_id": None})
    assert "Encounter.locationID" in table.columns
    assert table["Encounter.locationID"].tolist() == [""]


def test_the_survey_photos_join_encounter_decision_and_exif_of_each_test_photo():
    captures = pd.DataFrame({"image": ["a.jpg", "b.jpg", "c.jpg"], "taken_at": ["2019-07-04T10:00:00", "", ""],
                             "latitude": ["20.5", "", ""], "longitude": ["-156.1", "", ""]})
    reviewed = pd.DataFrame({"image": ["a.jpg", "c.jpg"], "id": ["w_A", ""]})
    encounters = {"a.jpg": "E1", "b.jpg": "E1", "c.jpg": "untimed-c.jpg"}
    photos = survey_photos(["a.jpg", "b.jpg", "c.jpg"], captures, reviewed, encounters)
    assert photos.drop(columns=["latitude", "longitude"]).to_dict("list") == {
        "image": ["a.jpg", "b.jpg", "c.jpg"], "encounter": ["E1", "E1", ""], "id": ["w_A", "", ""],
        "taken_at": ["2019-07-04T10:00:00", "", ""]}
    np.testing.assert_array_equal(photos[["latitude", "longitude"]].to_numpy(),
                                  [[20.5, -156.1], [NAN, NAN], [NAN, NAN]])
