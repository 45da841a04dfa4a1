"""Encounters from EXIF: capture times and GPS read with Pillow (`whaleid.data.photo_metadata`) and
photos grouped by them (`whaleid.data.encounters`), on photos whose EXIF the tests write themselves."""

from __future__ import annotations

import io
import warnings
from datetime import datetime

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import encode, textured
from PIL import Image

from whaleid.data import encounters as encounters_module
from whaleid.data.encounters import ENCOUNTER_COLUMNS, great_circle_distance_m, group_encounters, summary
from whaleid.data.photo_metadata import CAPTURE_COLUMNS, capture_table, read_capture
from whaleid.identification.search import read_encounters
from whaleid.io.files import write_csv
from whaleid.io.tables import read_table

MAKE, DATE_TIME, DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED, SUBSEC_TIME_ORIGINAL = 0x010F, 0x0132, 0x9003, 0x9004, 0x9291
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# Reykjavik harbour, and a point 3 arc seconds (about 93 m) north of it
HARBOUR = (64, 8, 30.0, "N", 21, 56, 30.0, "W")
NEAR_HARBOUR = (64, 8, 33.0, "N", 21, 56, 30.0, "W")
FAR_OUT = (64, 20, 0.0, "N", 21, 56, 30.0, "W")  # about 21 km north


def exif_block(original: str | None = None, *, digitized: str | None = None, changed: str | None = None,
               subsec: str | None = None, gps: tuple | None = None) -> Image.Exif:
    exif = Image.Exif()
    # as a camera writes it; and Pillow's PNG writer leaves out an EXIF block whose first directory is empty
    exif[MAKE] = "test camera"
    if changed is not None:
        exif[DATE_TIME] = changed
    sub_ifd = exif.get_ifd(EXIF_IFD)
    if original is not None:
        sub_ifd[DATE_TIME_ORIGINAL] = original
    if digitized is not None:
        sub_ifd[DATE_TIME_DIGITIZED] = digitized
    if subsec is not None:
        sub_ifd[SUBSEC_TIME_ORIGINAL] = subsec
    if gps is not None:
        lat_d, lat_m, lat_s, lat_ref, lon_d, lon_m, lon_s, lon_ref = gps
        gps_ifd = exif.get_ifd(GPS_IFD)
        gps_ifd.update({1: lat_ref, 2: (float(lat_d), float(lat_m), float(lat_s)),
                        3: lon_ref, 4: (float(lon_d), float(lon_m), float(lon_s))})
    return exif


def photo(folder, name: str, original: str | None = None, seed: int = 0, **exif) -> str:
    """A small textured photo `name` in `folder`, with the EXIF `exif_block` makes (none when nothing is given)."""
    picture = Image.fromarray(textured(48, 64, seed=seed)[:, :, ::-1].copy())
    block = exif_block(original, **exif) if original is not None or exif else None
    picture.save(folder / name, **({"exif": block} if block is not None else {}))
    return name


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with an APP1 segment holding `payload` right after its start marker."""
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def captures_of(folder, names) -> pd.DataFrame:
    return capture_table([folder / name for name in names], names)


# --- reading the capture ---------------------------------------------------------------------------------

def test_the_time_with_its_fraction_and_the_signed_gps_position_are_read(tmp_path):
    photo(tmp_path, "a.jpg", "2024:07:03 10:15:02", subsec="52", changed="2024:08:01 09:00:00", gps=HARBOUR)
    capture = read_capture(tmp_path / "a.jpg")
    assert capture.taken_at == datetime(2024, 7, 3, 10, 15, 2, 520000)
    assert capture.source == "DateTimeOriginal"
    assert capture.latitude == pytest.approx(64 + 8 / 60 + 30 / 3600)
    assert capture.longitude == pytest.approx(-(21 + 56 / 60 + 30 / 3600))  # W is negative
    assert capture.problem == capture.gps_problem == ""


@pytest.mark.parametrize("tags, expected, source", [
    ({"digitized": "2024:07:03 10:00:00", "changed": "2024:09:09 09:09:09"}, datetime(2024, 7, 3, 10),
     "DateTimeDigitized"),
    ({"changed": "2024:09:09 09:09:09"}, datetime(2024, 9, 9, 9, 9, 9), "DateTime"),
    # an original that is no date falls back to the next tag that is one
    ({"original": "0000:00:00 00:00:00", "changed": "2024-09-09T09:09:09"}, datetime(2024, 9, 9, 9, 9, 9), "DateTime"),
])
def test_without_a_usable_date_time_original_the_next_tag_is_used_and_named(tmp_path, tags, expected, source):
    photo(tmp_path, "a.jpg", tags.pop("original", None), **tags)
    capture = read_capture(tmp_path / "a.jpg")
    assert (capture.taken_at, capture.source, capture.problem) == (expected, source, "")


@pytest.mark.parametrize("written, problem", [
    ("0000:00:00 00:00:00", "DateTimeOriginal '0000:00:00 00:00:00' is not a date"),
    ("2024:02:30 10:00:00", "DateTimeOriginal '2024:02:30 10:00:00' is not a date"),
    ("yesterday", "DateTimeOriginal 'yesterday' is not a date"),
])
def test_a_date_time_original_that_is_no_date_is_a_problem_not_a_time(tmp_path, written, problem):
    photo(tmp_path, "a.jpg", written, gps=HARBOUR)
    capture = read_capture(tmp_path / "a.jpg")
    assert (capture.taken_at, capture.source, capture.problem) == (None, "", problem)
    assert capture.latitude == pytest.approx(64.141667, abs=1e-6)  # the position is read all the same


def test_a_photo_without_exif_or_without_a_time_tag_says_so(tmp_path):
    (tmp_path / "plain.jpg").write_bytes(encode(textured(48, 64)))
    photo(tmp_path, "gps_only.jpg", gps=HARBOUR)
    plain, gps_only = read_capture(tmp_path / "plain.jpg"), read_capture(tmp_path / "gps_only.jpg")
    assert (plain.taken_at, plain.problem, plain.latitude) == (None, "no EXIF", None)
    assert gps_only.taken_at is None
    assert gps_only.problem == "no DateTimeOriginal, DateTimeDigitized or DateTime in EXIF"


@pytest.mark.parametrize("payload, problem", [
    (b"Exif\x00\x00" + bytes(range(256)) * 2, "EXIF unreadable: not a TIFF file"),
    # a valid TIFF header whose first directory claims 65535 entries in 40 bytes: Pillow only warns
    (b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 40, "EXIF unreadable: Corrupt EXIF data"),
])
def test_a_corrupt_exif_block_is_a_problem_of_a_photo_that_still_decodes(tmp_path, payload, problem):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(with_app1(encode(textured(48, 64)), payload))
    assert cv2.imread(str(path)).shape == (48, 64, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own, about the corrupt EXIF
        with Image.open(path) as decoded:
            decoded.load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is raised, and nothing leaks to the log either
        capture = read_capture(path)
    assert capture.taken_at is None and capture.latitude is None
    assert capture.problem.startswith(problem)


def test_a_png_is_read_without_decoding_its_pixels(tmp_path):
    png = encode(textured(48, 64), ".png")
    (tmp_path / "plain.png").write_bytes(png)
    # cut short in its pixel data: Pillow's PNG getexif would decode the pixels (and fail) to look for EXIF after them
    (tmp_path / "cut.png").write_bytes(png[:len(png) // 2])
    photo(tmp_path, "timed.png", "2024:07:03 10:15:02")
    assert read_capture(tmp_path / "plain.png").problem == "no EXIF"
    assert read_capture(tmp_path / "cut.png").problem == "no EXIF"
    assert read_capture(tmp_path / "timed.png").taken_at == datetime(2024, 7, 3, 10, 15, 2)


def test_a_jpeg_cut_short_in_its_pixels_still_gives_its_time(tmp_path):
    photo(tmp_path, "whole.jpg", "2024:07:03 10:15:02", seed=3)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) - 600])
    with Image.open(tmp_path / "cut.jpg") as cut, pytest.raises(OSError):
        cut.load()  # the pixels cannot be decoded
    assert read_capture(tmp_path / "cut.jpg").taken_at == datetime(2024, 7, 3, 10, 15, 2)


@pytest.mark.parametrize("gps, problem", [
    ((0, 0, 0.0, "N", 0, 0, 0.0, "E"), "GPS 0, 0 (null island"),
    ((95, 0, 0.0, "N", 21, 0, 0.0, "W"), "GPS latitude 95.000000° is out of range"),
    ((64, 0, 0.0, "N", 181, 0, 0.0, "E"), "GPS longitude 181.000000° is out of range"),
    ((64, 75, 0.0, "N", 21, 0, 0.0, "W"), "GPS latitude"),
    ((64, 0, 0.0, "X", 21, 0, 0.0, "W"), "GPS latitude reference 'X' is not N or S"),
])
def test_an_implausible_gps_position_is_dropped_with_a_problem_and_the_time_kept(tmp_path, gps, problem):
    photo(tmp_path, "a.jpg", "2024:07:03 10:15:02", gps=gps)
    capture = read_capture(tmp_path / "a.jpg")
    assert (capture.latitude, capture.longitude) == (None, None)
    assert capture.gps_problem.startswith(problem)
    assert capture.taken_at == datetime(2024, 7, 3, 10, 15, 2) and capture.problem == ""


def test_a_file_that_is_no_image_is_a_problem_and_a_missing_file_raises_naming_it(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    assert read_capture(tmp_path / "notes.jpg").problem.startswith("not an image Pillow reads")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_capture(tmp_path / "missing.jpg")


def test_the_capture_table_has_a_row_per_photo_in_parallel_alike(tmp_path):
    names = [photo(tmp_path, "a.jpg", "2024:07:03 10:15:02", subsec="5", gps=HARBOUR),
             photo(tmp_path, "b.jpg", "2024:07:03 10:20:00")]
    (tmp_path / "c.png").write_bytes(encode(textured(48, 64), ".png"))
    names.append("c.png")
    table = capture_table([tmp_path / name for name in names], names)
    assert list(table.columns) == CAPTURE_COLUMNS
    assert table["image"].tolist() == names
    assert table["taken_at"].tolist() == ["2024-07-03T10:15:02.500000", "2024-07-03T10:20:00", ""]
    assert table["source"].tolist() == ["DateTimeOriginal", "DateTimeOriginal", ""]
    assert table["latitude"].notna().tolist() == [True, False, False]
    assert table["problem"].tolist() == ["", "", "no EXIF"]
    pd.testing.assert_frame_equal(capture_table([tmp_path / name for name in names], names, n_jobs=2), table)
    with pytest.raises(ValueError, match="2 paths but 3 image names"):
        capture_table([tmp_path / name for name in names[:2]], names)


# --- grouping into encounters ------------------------------------------------------------------------------

def encounter_of(groups: pd.DataFrame) -> dict[str, str]:
    return dict(zip(groups["Image"], groups["Encounter"]))


def reason_of(groups: pd.DataFrame) -> dict[str, str]:
    return dict(zip(groups["Image"], groups["Reason"]))


def test_photos_within_the_gap_chain_into_one_encounter_and_a_later_one_is_alone(tmp_path):
    names = [photo(tmp_path, "a.jpg", "2024:07:03 10:00:00"),
             photo(tmp_path, "b.jpg", "2024:07:03 10:08:00"),   # 8 min after a
             photo(tmp_path, "c.jpg", "2024:07:03 10:16:30"),   # 8.5 min after b, 16.5 after a
             photo(tmp_path, "d.jpg", "2024:07:03 10:27:00")]   # 10.5 min after c
    groups = group_encounters(captures_of(tmp_path, names), max_gap_minutes=10, max_distance_m=500)
    assert list(groups.columns) == ENCOUNTER_COLUMNS
    assert encounter_of(groups) == {"a.jpg": "20240703-100000-a.jpg", "b.jpg": "20240703-100000-a.jpg",
                                    "c.jpg": "20240703-100000-a.jpg", "d.jpg": "20240703-102700-d.jpg"}
    assert reason_of(groups)["a.jpg"] == "3 photos 2024-07-03 10:00:00–10:16:30, gaps ≤ 8.5 min, by time alone (no GPS)"
    assert reason_of(groups)["d.jpg"] == "alone: no photo within 10 min"
    # the gap is inclusive: 10.5 min takes d in
    assert group_encounters(captures_of(tmp_path, names), 10.5, None)["Encounter"].nunique() == 1


def test_photos_at_one_time_are_one_encounter_when_near_and_two_when_far(tmp_path):
    names = [photo(tmp_path, "a.jpg", "2024:07:03 12:00:00", gps=HARBOUR),
             photo(tmp_path, "b.jpg", "2024:07:03 12:01:00", gps=NEAR_HARBOUR),
             photo(tmp_path, "c.jpg", "2024:07:03 12:00:30", gps=FAR_OUT)]
    groups = group_encounters(captures_of(tmp_path, names), max_gap_minutes=10, max_distance_m=500)
    assert encounter_of(groups) == {"a.jpg": "20240703-120000-a.jpg", "b.jpg": "20240703-120000-a.jpg",
                                    "c.jpg": "20240703-120030-c.jpg"}
    assert reason_of(groups)["a.jpg"] == ("2 photos 2024-07-03 12:00:00–12:01:00, gaps ≤ 1.0 min, "
                                          "GPS links ≤ 93 m (2 of 2 with GPS)")
    assert reason_of(groups)["c.jpg"] == "alone: over 500 m from every photo within 10 min (2 photos)"
    # without a distance limit, time alone links all three
    assert group_encounters(captures_of(tmp_path, names), 10, None)["Encounter"].nunique() == 1
    # and with a tighter one, a and b are apart too
    assert group_encounters(captures_of(tmp_path, names), 10, 50)["Encounter"].nunique() == 3


def test_a_photo_with_gps_and_one_without_are_linked_by_time_alone(tmp_path):
    names = [photo(tmp_path, "a.jpg", "2024:07:03 12:00:00", gps=FAR_OUT),
             photo(tmp_path, "b.jpg", "2024:07:03 12:05:00")]
    groups = group_encounters(captures_of(tmp_path, names), max_gap_minutes=10, max_distance_m=500)
    assert groups["Encounter"].tolist() == ["20240703-120000-a.jpg"] * 2
    assert groups["Reason"][0] == ("2 photos 2024-07-03 12:00:00–12:05:00, gaps ≤ 5.0 min, "
                                   "by time alone (1 of 2 with GPS)")


def test_a_photo_without_gps_between_two_far_apart_links_them_all(tmp_path):
    # the rule is pairwise and encounters are its connected groups: documented, and kept so
    names = [photo(tmp_path, "a.jpg", "2024:07:03 12:00:00", gps=HARBOUR),
             photo(tmp_path, "b.jpg", "2024:07:03 12:00:30", gps=FAR_OUT),
             photo(tmp_path, "c.jpg", "2024:07:03 12:01:00")]
    groups = group_encounters(captures_of(tmp_path, names), max_gap_minutes=10, max_distance_m=500)
    assert groups["Encounter"].nunique() == 1
    assert groups["Reason"][0].endswith("by time alone (2 of 3 with GPS)")


def test_photos_without_a_time_are_alone_with_the_reason(tmp_path):
    names = [photo(tmp_path, "timed.jpg", "2024:07:03 12:00:00"),
             photo(tmp_path, "zero.jpg", "0000:00:00 00:00:00")]
    (tmp_path / "plain.jpg").write_bytes(encode(textured(48, 64)))
    (tmp_path / "corrupt.jpg").write_bytes(with_app1(encode(textured(48, 64)), b"Exif\x00\x00" + b"\x07" * 64))
    (tmp_path / "plain.png").write_bytes(encode(textured(48, 64), ".png"))
    names += ["plain.jpg", "corrupt.jpg", "plain.png"]
    groups = group_encounters(captures_of(tmp_path, names), max_gap_minutes=10, max_distance_m=None)
    assert groups["Image"].tolist() == ["timed.jpg", "corrupt.jpg", "plain.jpg", "plain.png", "zero.jpg"]
    assert groups["Encounter"].tolist() == ["20240703-120000-timed.jpg", "untimed-corrupt.jpg", "untimed-plain.jpg",
                                            "untimed-plain.png", "untimed-zero.jpg"]
    reasons = reason_of(groups)
    assert reasons["plain.jpg"] == reasons["plain.png"] == "alone: no capture time (no EXIF)"
    assert reasons["corrupt.jpg"].startswith("alone: no capture time (EXIF unreadable: ")
    assert reasons["zero.jpg"] == "alone: no capture time (DateTimeOriginal '0000:00:00 00:00:00' is not a date)"
    assert summary(groups) == ("0 encounters of 2+ photos pool 0 of 5 photos; 5 alone: 4 no capture time, "
                               "1 no photo within 10 min")


def test_encounters_do_not_depend_on_the_order_of_the_rows(tmp_path):
    names = [photo(tmp_path, f"p{index}.jpg", f"2024:07:03 12:{minute:02d}:{second:02d}", gps=gps)
             for index, (minute, second, gps) in enumerate([(0, 0, HARBOUR), (0, 0, FAR_OUT), (4, 0, None),
                                                            (9, 0, NEAR_HARBOUR), (30, 0, None), (30, 0, None),
                                                            (45, 10, FAR_OUT), (50, 0, HARBOUR)])]
    (tmp_path / "plain.jpg").write_bytes(encode(textured(48, 64)))
    captures = captures_of(tmp_path, [*names, "plain.jpg"])
    expected = group_encounters(captures, 5, 500)
    assert expected["Encounter"].nunique() == 5  # p0-p3 (through p2, without GPS), p4-p5, p6, p7, plain
    for seed in range(5):
        shuffled = captures.sample(frac=1, random_state=seed)
        pd.testing.assert_frame_equal(group_encounters(shuffled, 5, 500), expected)


def test_the_encounters_table_round_trips_through_the_workflows_reader(tmp_path):
    names = [photo(tmp_path, "a.jpg", "2024:07:03 10:00:00", gps=HARBOUR),
             photo(tmp_path, "b.jpg", "2024:07:03 10:03:00", gps=NEAR_HARBOUR),
             photo(tmp_path, "NA.jpg", "2024:07:04 10:00:00")]
    (tmp_path / "plain.jpg").write_bytes(encode(textured(48, 64)))
    names.append("plain.jpg")
    # as the rules will run it: the captures written and read back as strings, then grouped
    write_csv(captures_of(tmp_path, names), tmp_path / "captures.csv")
    groups = group_encounters(read_table(tmp_path / "captures.csv"), 10, 500)
    pd.testing.assert_frame_equal(groups, group_encounters(captures_of(tmp_path, names), 10, 500))
    write_csv(groups, tmp_path / "encounters.csv")
    assert read_encounters(tmp_path / "encounters.csv", names) == encounter_of(groups)
    assert encounter_of(groups)["b.jpg"] == encounter_of(groups)["a.jpg"] != encounter_of(groups)["NA.jpg"]


# --- the grouping on its own, at scale ---------------------------------------------------------------------

def random_captures(count: int, seed: int, days: float = 3.0) -> pd.DataFrame:
    """Photos over `days`, in bursts (several photos a second), half with a position in a 20 km square,
    some without a time."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-07-03T06:00:00", "ms")
    offsets = np.sort(rng.uniform(0, days * 86400e3, count)).astype("int64")
    offsets[1::3] = offsets[0::3][:len(offsets[1::3])] + rng.integers(0, 2000, len(offsets[1::3]))  # bursts
    times = (start + offsets.astype("timedelta64[ms]")).astype(str)
    times[rng.random(count) < 0.05] = ""
    positioned = rng.random(count) < 0.5
    latitude = np.where(positioned, 64.0 + rng.uniform(0, 0.18, count), np.nan)
    longitude = np.where(positioned, -22.0 + rng.uniform(0, 0.4, count), np.nan)
    return pd.DataFrame({"image": [f"img{index:06d}.jpg" for index in range(count)], "taken_at": times,
                         "latitude": latitude, "longitude": longitude, "problem": ""})


def brute_force_groups(captures: pd.DataFrame, max_gap_minutes: float, max_distance_m: float | None) -> set:
    """The encounters as sets of photos, by comparing every pair."""
    times = pd.to_datetime(captures["taken_at"].replace("", None), format="ISO8601")
    images, latitude, longitude = captures["image"].tolist(), captures["latitude"], captures["longitude"]
    parent = {image: image for image in images}

    def root(image):
        while parent[image] != image:
            image = parent[image]
        return image

    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            if pd.isna(times.iloc[i]) or pd.isna(times.iloc[j]):
                continue
            if abs((times.iloc[i] - times.iloc[j]).total_seconds()) > max_gap_minutes * 60:
                continue
            both = not (np.isnan(latitude.iloc[[i, j]]).any() or np.isnan(longitude.iloc[[i, j]]).any())
            if both and max_distance_m is not None and great_circle_distance_m(
                    latitude.iloc[i], longitude.iloc[i], latitude.iloc[j], longitude.iloc[j]) > max_distance_m:
                continue
            parent[root(images[j])] = root(images[i])
    members: dict[str, set] = {}
    for image in images:
        members.setdefault(root(image), set()).add(image)
    return {frozenset(group) for group in members.values()}


@pytest.mark.parametrize("max_gap_minutes, max_distance_m", [(2, 3000), (10, 8000), (0.5, None), (30, 500)])
def test_the_groups_are_those_of_comparing_every_pair(max_gap_minutes, max_distance_m):
    captures = random_captures(250, seed=int(max_gap_minutes * 10), days=0.5)
    groups = group_encounters(captures, max_gap_minutes, max_distance_m)
    found = {frozenset(members) for members in groups.groupby("Encounter")["Image"].agg(set)}
    expected = brute_force_groups(captures, max_gap_minutes, max_distance_m)
    assert found == expected
    assert 1 < len(found) < len(captures)  # neither everything apart nor everything together


def test_only_photos_within_the_gap_are_compared(monkeypatch):
    captures = random_captures(40_000, seed=1, days=200)
    compared = []

    def counting_distance(*points):
        compared.append(len(np.atleast_1d(points[0])))
        return great_circle_distance_m(*points)

    monkeypatch.setattr(encounters_module, "great_circle_distance_m", counting_distance)
    groups = group_encounters(captures, 10, 500)
    positioned = captures[(captures["taken_at"] != "") & captures["latitude"].notna()]
    times = np.sort(pd.to_datetime(positioned["taken_at"], format="ISO8601").to_numpy().astype("datetime64[ns]")
                    .astype("int64"))
    last_within = np.searchsorted(times, times + 600 * 10**9, side="right") - 1
    pairs_within_gap = int((last_within - np.arange(len(times))).sum())
    assert sum(compared) == pairs_within_gap < len(times) ** 2 / 1000
    assert len(groups) == len(captures) and groups["Image"].is_unique


@pytest.mark.parametrize("max_gap_minutes, max_distance_m, message", [
    (0, None, "max_gap_minutes=0"), (-5, 100, "max_gap_minutes=-5"), (float("nan"), None, "max_gap_minutes=nan"),
    (float("inf"), None, "max_gap_minutes=inf"), ("10", None, "max_gap_minutes='10'"), (True, None, "max_gap_minutes"),
    (10, 0, "max_distance_m=0"), (10, -1.5, "max_distance_m=-1.5"), (10, float("nan"), "max_distance_m=nan"),
])
def test_arguments_out_of_range_raise(max_gap_minutes, max_distance_m, message):
    captures = random_captures(5, seed=0)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        group_encounters(captures, max_gap_minutes, max_distance_m)


def test_a_table_that_cannot_be_grouped_raises_naming_the_problem():
    captures = random_captures(5, seed=0)
    with pytest.raises(ValueError, match="no taken_at column"):
        group_encounters(captures.drop(columns="taken_at"), 10, None)
    with pytest.raises(ValueError, match="img000001.jpg listed more than once"):
        group_encounters(pd.concat([captures, captures.iloc[[1]]]), 10, None)
    bad_time = captures.assign(taken_at=captures["taken_at"].where(captures.index != 2, "3rd of July"))
    with pytest.raises(ValueError, match="taken_at '3rd of July' of img000002.jpg is not an ISO 8601 time"):
        group_encounters(bad_time, 10, None)
    bad_latitude = captures.assign(latitude=[1.0, 2.0, 91.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="latitude 91.0 of img000002.jpg is beyond ±90°"):
        group_encounters(bad_latitude, 10, None)


def test_an_encounter_over_midnight_names_both_dates_and_ties_in_time_go_by_name():
    captures = pd.DataFrame({"image": ["z.jpg", "b.jpg", "a.jpg"],
                             "taken_at": ["2024-07-03T23:58:00", "2024-07-04T00:03:00", "2024-07-03T23:58:00"]})
    groups = group_encounters(captures, 10, None)
    assert groups["Image"].tolist() == ["a.jpg", "z.jpg", "b.jpg"]
    assert set(groups["Encounter"]) == {"20240703-235800-a.jpg"}
    assert groups["Reason"][0] == "3 photos 2024-07-03 23:58:00–2024-07-04 00:03:00, gaps ≤ 5.0 min"
    assert summary(groups) == "1 encounter of 2+ photos pools 3 of 3 photos; no photo alone"


def test_the_great_circle_distance():
    assert great_circle_distance_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)  # a degree of latitude
    assert great_circle_distance_m(60, 10, 60, 11) == pytest.approx(55_597, rel=1e-3)  # half as much at 60°
    assert great_circle_distance_m(64.1, -21.9, 64.1, -21.9) == 0
    # a point and its antipode: half the circumference
    assert great_circle_distance_m(10, 20, -10, -160) == pytest.approx(np.pi * 6_371_008.8)


def test_the_photo_bytes_written_by_the_helpers_carry_the_exif_asked_for(tmp_path):
    # the tests above stand on this: Pillow writes what the tests think they wrote
    photo(tmp_path, "a.jpg", "2024:07:03 10:15:02", gps=FAR_OUT)
    with Image.open(io.BytesIO((tmp_path / "a.jpg").read_bytes())) as written:
        exif = written.getexif()
        assert exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] == "2024:07:03 10:15:02"
        assert exif.get_ifd(GPS_IFD)[1] == "N" and float(exif.get_ifd(GPS_IFD)[2][1]) == 20.0


# --- in the workflow -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_workflow_finds_encounters_from_exif_and_exports_them_for_wildbook(tmp_path):
    """A survey without encounters.csv: a burst of three photos near one another is one encounter,
    a photo half an hour later and one with a corrupt EXIF are alone; the Wildbook export has the
    burst as one sighting with its date and position. No model is trained for it."""
    from test_workflow import TINY, merged, snakemake

    from whaleid.demo.dataset import generate_demo_dataset

    data = tmp_path / "data"
    generate_demo_dataset(data, n_individuals=12, n_train_images=40, n_test_images=8, max_side=96, seed=3)
    test_photos = sorted(p.name for p in (data / "test").iterdir())
    burst, later, corrupt = test_photos[:3], test_photos[3], test_photos[4]

    def with_exif(name, block):
        picture = Image.open(data / "test" / name)
        picture.load()
        picture.save(data / "test" / name, exif=block)

    for seconds, name in zip((0, 20, 45), burst):
        with_exif(name, exif_block(f"2024:07:03 10:15:{seconds:02d}", gps=HARBOUR if seconds else NEAR_HARBOUR))
    with_exif(later, exif_block("2024:07:03 10:45:00", gps=HARBOUR))
    jpeg = (data / "test" / corrupt).read_bytes()
    (data / "test" / corrupt).write_bytes(with_app1(jpeg, b"Exif\0\0" + b"\x13" * 40))

    config = merged(TINY, {"data_dir": str(data), "results_dir": "results", "wildbook": {"location_id": "Reykjavik"}})
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, "--", "results/review/wildbook_import.csv", config=config)
    results = work / "results"
    found = read_table(results / "ingest" / "encounters.csv").set_index("Image")
    assert found.loc[burst, "Encounter"].nunique() == 1
    assert found.loc[burst[0], "Reason"].startswith("3 photos 2024-07-03 10:15:00")
    assert found.loc[later, "Reason"] == "alone: no photo within 1 min"
    assert found.loc[corrupt, "Reason"].startswith("alone: no capture time")
    assert found["Encounter"].nunique() == len(test_photos) - 2

    export = pd.read_csv(results / "review" / "wildbook_import.csv", dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
    [sighting] = export[export["Encounter.mediaAsset2"] != ""].to_dict("records")
    assert [sighting[f"Encounter.mediaAsset{n}"] for n in range(3)] == burst
    assert (sighting["Encounter.year"], sighting["Encounter.month"], sighting["Encounter.day"]) == ("2024", "7", "3")
    # the position of the earliest photo, taken near the harbour
    assert abs(float(sighting["Encounter.decimalLatitude"]) - (64 + 8 / 60 + 33 / 3600)) < 1e-6
    assert sighting["Encounter.locationID"] == "Reykjavik"
    assert len(export) == len(test_photos) - 2
    # nothing but the photos' headers, the split and the review's catalogue was needed
    assert not (results / "preprocess").exists()
