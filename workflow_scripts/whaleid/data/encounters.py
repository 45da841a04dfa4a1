"""Encounters from capture times: the photos of a dataset without a hand-made encounters.csv,
grouped by when (and, where both photos have GPS, where) they were taken.

Two photos are linked when both have a capture time at most `max_gap_minutes` apart and, where
both have a GPS position and a `max_distance_m` is given, at most that far apart (great-circle
distance). An encounter is a connected group of links: a photo 8 minutes after one that was 8
minutes after a third joins both, as a sighting with a steady stream of photos needs. So one
photo without GPS links the photos around it by time alone, wherever they were taken. Photos
without a time are each an encounter of their own. This is how field tools built around
Wildbook group photos (EXIF time, with a buffer of minutes).

The result, one row per photo (Image, Encounter, Reason), is what
`whaleid.identification.search.read_encounters` reads: an encounter's photos are answered together.
An encounter is named after its earliest photo (by time, then name): ``20240703-101502-a.jpg``
for one whose earliest photo ``a.jpg`` was taken 2024-07-03 10:15:02, ``untimed-b.jpg`` for a
photo without a time; so names do not depend on the order of the rows, and say where to look.

Photos are sorted by time and only those within `max_gap_minutes` of each other are compared:
the work grows with the number of photos and of pairs taken within the gap, not with its square.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import pandas as pd

from whaleid.data.links import linked_groups

ENCOUNTER_COLUMNS = ["Image", "Encounter", "Reason"]
ALONE = "alone: "
# The mean radius of the Earth (IUGG): the great-circle distance is within 0.5% of the ellipsoid's.
EARTH_RADIUS_M = 6_371_008.8


def great_circle_distance_m(latitude_a, longitude_a, latitude_b, longitude_b) -> np.ndarray:
    """The haversine distance in metres between points given in decimal degrees (arrays or numbers)."""
    phi_a, phi_b = np.radians(latitude_a), np.radians(latitude_b)
    half_chord = (np.sin((phi_b - phi_a) / 2) ** 2
                  + np.cos(phi_a) * np.cos(phi_b) * np.sin(np.radians(np.subtract(longitude_b, longitude_a)) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(half_chord, 1.0)))


def _check_arguments(max_gap_minutes, max_distance_m) -> None:
    def positive(value) -> bool:
        return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0

    if not positive(max_gap_minutes):
        raise ValueError(f"max_gap_minutes={max_gap_minutes!r}: expected a number of minutes above 0")
    if max_distance_m is not None and not positive(max_distance_m):
        raise ValueError(f"max_distance_m={max_distance_m!r}: expected None (no distance limit) or metres above 0")


def _photos(captures: pd.DataFrame) -> pd.DataFrame:
    """image, time (NaT without one), latitude, longitude (NaN without a position), problem: `captures`
    (a `whaleid.data.photo_metadata.capture_table`, or that table read back as strings) checked."""
    missing = [column for column in ("image", "taken_at") if column not in captures.columns]
    if missing:
        raise ValueError(f"captures: no {', '.join(missing)} column; expected image, taken_at and optionally "
                         f"latitude, longitude, problem; found {', '.join(map(str, captures.columns)) or 'nothing'}")
    images = captures["image"].astype(str)
    if (images.str.strip() == "").any() or captures["image"].isna().any():
        raise ValueError("captures: a row without an image name")
    repeated = sorted(set(images[images.duplicated()]))
    if repeated:
        raise ValueError(f"captures: {', '.join(repeated[:5])} listed more than once; one row per photo is expected")
    photos = pd.DataFrame({"image": images.to_numpy()})

    taken_at = captures["taken_at"].replace("", None).to_numpy()
    try:
        photos["time"] = pd.to_datetime(pd.Series(taken_at, dtype=object), format="ISO8601", errors="coerce")
    except (TypeError, ValueError) as err:
        raise ValueError(f"captures: taken_at cannot be read as times: {err}") from err
    if not pd.api.types.is_datetime64_dtype(photos["time"]):
        raise ValueError("captures: taken_at has time-zone offsets; expected the camera clocks' local times, "
                         "without one")
    unread = photos["time"].isna() & pd.notna(taken_at)
    if unread.any():
        image, value = photos["image"][unread].iloc[0], taken_at[unread.to_numpy()][0]
        raise ValueError(f"captures: taken_at {value!r} of {image} is not an ISO 8601 time "
                         f"({int(unread.sum())} such rows)")

    for axis, limit in (("latitude", 90), ("longitude", 180)):
        values = captures[axis].replace("", None) if axis in captures.columns else pd.Series(np.nan, captures.index)
        try:
            photos[axis] = pd.to_numeric(values.to_numpy()).astype(float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"captures: {axis} is not a column of numbers: {err}") from err
        outside = photos[axis].abs() > limit
        if outside.any():
            raise ValueError(f"captures: {axis} {photos[axis][outside].iloc[0]} of {photos['image'][outside].iloc[0]} "
                             f"is beyond ±{limit}°")
    photos["problem"] = (captures["problem"].fillna("").astype(str).to_numpy() if "problem" in captures.columns
                         else "")
    return photos


def _gps_links(times: np.ndarray, latitude: np.ndarray, longitude: np.ndarray, gap_ns: int,
               max_distance_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, distance): every pair of the photos given (sorted by time, all with a position) taken at
    most `gap_ns` and `max_distance_m` apart, compared only within the gap."""
    last_within = np.searchsorted(times, times + gap_ns, side="right") - 1
    firsts, seconds, distances = [], [], []
    # Offset by offset: each step compares every photo with the one `offset` later, while it is within the gap;
    # the photos still compared shrink, so the work is the number of pairs within the gap.
    compared, offset = np.arange(len(times)), 1
    while True:
        compared = compared[last_within[compared] - compared >= offset]
        if not compared.size:
            break
        later = compared + offset
        distance = great_circle_distance_m(latitude[compared], longitude[compared], latitude[later], longitude[later])
        near = distance <= max_distance_m
        firsts.append(compared[near])
        seconds.append(later[near])
        distances.append(distance[near])
        offset += 1
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(distances)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _time_span(first: pd.Timestamp, last: pd.Timestamp) -> str:
    if first.floor("s") == last.floor("s"):
        return f"{first:%Y-%m-%d %H:%M:%S}"
    if first.date() == last.date():
        return f"{first:%Y-%m-%d %H:%M:%S}–{last:%H:%M:%S}"
    return f"{first:%Y-%m-%d %H:%M:%S}–{last:%Y-%m-%d %H:%M:%S}"


def _reason(group, max_gap_minutes: float, max_distance_m: float | None, within_gap: int) -> str:
    """What linked an encounter's photos (`group`: its size, first and last time, largest gap, photos with GPS,
    widest GPS link), or why its one photo is alone (`within_gap`: how many photos were taken within its gap)."""
    if group.size == 1:
        gap_text = f"{max_gap_minutes:g} min"
        if within_gap == 0:
            return ALONE + f"no photo within {gap_text}"
        # linked by time to any photo without a position: those within the gap all have one, and are too far
        return ALONE + f"over {max_distance_m:g} m from every photo within {gap_text} ({_count(within_gap, 'photo')})"
    reason = f"{group.size} photos {_time_span(group.first, group.last)}, gaps ≤ {group.gap:.1f} min"
    if max_distance_m is None:
        return reason
    share = f"{group.with_gps} of {group.size} with GPS" if group.with_gps else "no GPS"
    if math.isnan(group.widest):
        return reason + f", by time alone ({share})"
    return reason + f", GPS links ≤ {group.widest:.0f} m ({share})"


def group_encounters(captures: pd.DataFrame, max_gap_minutes: float, max_distance_m: float | None) -> pd.DataFrame:
    """Image, Encounter, Reason: each photo of `captures` (image, taken_at and optionally latitude,
    longitude, problem: `whaleid.data.photo_metadata.capture_table`) and its encounter (see the module's
    docstring), with what linked the encounter's photos, or why a photo is alone.

    Rows are ordered by encounter (earliest first), then by time; photos without a time last, by name.
    Raises ValueError for a `max_gap_minutes` not above 0, a `max_distance_m` neither None nor above 0,
    and for a table without image or taken_at, with a repeated image, or with a value that is not a time
    or a position.
    """
    _check_arguments(max_gap_minutes, max_distance_m)
    photos = _photos(captures)
    gap_ns = round(max_gap_minutes * 60e9)

    timed = photos[photos["time"].notna()].sort_values(["time", "image"], kind="stable").reset_index(drop=True)
    times = timed["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    first_within = np.searchsorted(times, times - gap_ns, side="left")
    last_within = np.searchsorted(times, times + gap_ns, side="right") - 1
    positioned = (timed["latitude"].notna() & timed["longitude"].notna()).to_numpy()
    compared_by_place = positioned if max_distance_m is not None else np.zeros(len(timed), bool)

    # A photo linked by time alone (no position, or no distance limit) is linked to every photo within its gap,
    # so all of them are one group: the neighbours (k, k + 1) from the first to the last of them are linked.
    # Counting, for each k, the gaps that span it finds them without listing every pair.
    by_time = np.flatnonzero(~compared_by_place)
    spans = np.zeros(len(timed) + 1, np.int64)
    np.add.at(spans, first_within[by_time], 1)
    np.add.at(spans, last_within[by_time], -1)
    neighbours = np.flatnonzero(np.cumsum(spans)[: max(len(timed) - 1, 0)] > 0)

    # Photos that both have a position are linked only when near enough too.
    with_position = np.flatnonzero(compared_by_place)
    near_first, near_second, near_distance = _gps_links(
        times[with_position], timed["latitude"].to_numpy()[with_position],
        timed["longitude"].to_numpy()[with_position], gap_ns, max_distance_m or 0.0)
    near_first, near_second = with_position[near_first], with_position[near_second]

    timed["group"] = linked_groups(len(timed), np.concatenate([neighbours, near_first]),
                                   np.concatenate([neighbours + 1, near_second]))
    timed["gap"] = timed.groupby("group")["time"].diff().dt.total_seconds() / 60
    timed["positioned"] = positioned
    by_group = timed.groupby("group")
    groups = pd.DataFrame({"size": by_group.size(), "last": by_group["time"].max(), "gap": by_group["gap"].max(),
                           "with_gps": by_group["positioned"].sum(),
                           "widest": pd.Series(near_distance).groupby(timed["group"].to_numpy()[near_first]).max()})
    # groups are numbered in the order of their first photo, which is their earliest (by time, then name)
    groups["earliest"] = np.flatnonzero(~timed["group"].duplicated().to_numpy())
    groups["first"] = timed["time"].to_numpy()[groups["earliest"]]
    groups["encounter"] = [f"{time:%Y%m%d-%H%M%S}-{image}" for time, image in
                           zip(groups["first"], timed["image"].to_numpy()[groups["earliest"]])]
    groups["reason"] = [_reason(group, max_gap_minutes, max_distance_m,
                                int(last_within[group.earliest] - first_within[group.earliest]))
                        for group in groups.itertuples()]
    timed = timed.sort_values("group", kind="stable")
    rows = list(zip(timed["image"], groups["encounter"][timed["group"]], groups["reason"][timed["group"]]))

    untimed = photos[photos["time"].isna()].sort_values("image")
    rows += [(image, f"untimed-{image}", ALONE + "no capture time" + (f" ({problem})" if problem else ""))
             for image, problem in zip(untimed["image"], untimed["problem"])]
    return pd.DataFrame(rows, columns=ENCOUNTER_COLUMNS)


def summary(groups: pd.DataFrame) -> str:
    """One line for the log about `groups` (`group_encounters`): the encounters of two or more photos and the
    photos they pool, and the photos alone, by why."""
    if groups.empty:
        return "no photos to group into encounters"
    sizes = groups.groupby("Encounter")["Image"].transform("size")
    pooled = sizes > 1
    encounters = groups.loc[pooled, "Encounter"].nunique()
    line = (f"{_count(encounters, 'encounter')} of 2+ photos {'pools' if encounters == 1 else 'pool'} "
            f"{int(pooled.sum())} of {_count(len(groups), 'photo')}")
    alone = groups.loc[~pooled, "Reason"].str.removeprefix(ALONE).str.split(" (", regex=False).str[0]
    if alone.empty:
        return line + "; no photo alone"
    counts = alone.value_counts()
    whys = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return line + f"; {len(alone)} alone: " + ", ".join(f"{count} {why}" for why, count in whys)
