"""When and where a photo was taken, from its EXIF: the capture time and GPS position that group a
dataset's photos into encounters (`whaleid.data.encounters`) where it has no encounters.csv.

Only the file's header is read (Pillow opens lazily, and nothing here decodes the pixels), so a
catalogue of tens of thousands of photos is read in seconds. A missing, corrupt or implausible
EXIF block is not an error: the photo is still a usable photo, and why it has no time or no
position is reported beside it. Times are the camera clock's local time as written; time zones
(OffsetTimeOriginal) and the clock errors between cameras are not corrected.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed
from PIL import Image, UnidentifiedImageError

CAPTURE_COLUMNS = ["image", "taken_at", "source", "latitude", "longitude", "problem", "gps_problem"]

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
# Where a capture time is looked for, best first: (name, tag, its sub-second tag, in the Exif sub-IFD?).
# DateTime (IFD0) is when the file was last changed, often by an editor: the last resort.
_TIME_TAGS = (("DateTimeOriginal", 0x9003, 0x9291, True),
              ("DateTimeDigitized", 0x9004, 0x9292, True),
              ("DateTime", 0x0132, 0x9290, False))
_NO_TIME_TAG = "no DateTimeOriginal, DateTimeDigitized or DateTime in EXIF"
_NO_TAGS = "EXIF block without tags"
# "YYYY:MM:DD HH:MM:SS" as EXIF has it; some writers use dashes in the date or a T before the time.
_EXIF_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
# GPS IFD tags: (reference tag, value tag, the axis, its two references, its limit in degrees).
_GPS_AXES = ((1, 2, "latitude", ("N", "S"), 90.0), (3, 4, "longitude", ("E", "W"), 180.0))


@dataclass(frozen=True)
class PhotoCapture:
    """When and where one photo was taken, as far as its EXIF says.

    ``source``: the EXIF tag the time came from (``DateTimeOriginal``, ``DateTimeDigitized`` or
    ``DateTime``), empty without a time. ``problem``: why there is no time, empty when there is
    one. ``gps_problem``: why a GPS position the photo carries was not used (out of range, 0,0,
    unreadable), empty when a position was read or the photo has none.
    """

    taken_at: datetime | None
    source: str
    latitude: float | None
    longitude: float | None
    problem: str
    gps_problem: str = ""


def read_capture(path: str | Path) -> PhotoCapture:
    """The capture time and GPS position in the EXIF of the photo at `path`.

    Never raises for a missing, corrupt or implausible EXIF block, nor for content Pillow does
    not recognise as an image: the `PhotoCapture` says what was wrong. Raises OSError (naming
    the path) only when the file itself cannot be opened (missing, unreadable).
    """
    path = Path(path)
    with path.open("rb") as stream, warnings.catch_warnings(record=True) as warned:
        # Pillow warns (rather than raises) for some corrupt EXIF; recorded, they explain a missing time
        # instead of filling the log once a photo.
        warnings.simplefilter("always")
        try:
            image = Image.open(stream)
        except UnidentifiedImageError:
            return PhotoCapture(None, "", None, None, "not an image Pillow reads (unknown format or corrupt header)")
        except (OSError, Image.DecompressionBombError) as err:
            return PhotoCapture(None, "", None, None, f"not an image Pillow reads: {err}")
        with image:
            exif, problem = _exif_of(image)
            taken_at, source, time_problem = _capture_time(exif) if exif is not None else (None, "", problem)
            latitude, longitude, gps_problem = _gps_position(exif) if exif is not None else (None, None, "")
    exif_warnings = [str(warning.message).strip() for warning in warned if "exif" in str(warning.message).lower()]
    if taken_at is None and exif_warnings:
        if time_problem == _NO_TAGS:
            time_problem = f"EXIF unreadable: {exif_warnings[0]}"
        else:
            time_problem += f" (EXIF partly unreadable: {exif_warnings[0]})"
    return PhotoCapture(taken_at, source, latitude, longitude, time_problem, gps_problem)


def _exif_of(image: Image.Image) -> tuple[Image.Exif | None, str]:
    """The photo's EXIF block, or None and why not."""
    raw = image.info.get("exif")
    try:
        if raw is not None:
            # JPEG's APP1, PNG's eXIf, WebP's EXIF chunk, parsed afresh: Pillow may have parsed it while opening
            # and swallowed its errors.
            exif = Image.Exif()
            exif.load(raw)
        else:
            # A TIFF's own tags, or a PNG's text copy. The base method: PNG's own decodes the whole picture
            # to look for an eXIf chunk after the pixels.
            exif = Image.Image.getexif(image)
        if not len(exif):
            return None, "no EXIF" if not raw else _NO_TAGS
    except Exception as err:  # Pillow's parser raises many kinds: SyntaxError, struct.error, ...
        return None, f"EXIF unreadable: {err}"
    return exif, ""


def _capture_time(exif: Image.Exif) -> tuple[datetime | None, str, str]:
    """(time, the tag it came from, "") from the first of `_TIME_TAGS` that holds a date, else (None, "", why)."""
    try:
        sub_ifd = exif.get_ifd(_EXIF_IFD)
    except Exception as err:  # as in _exif_of
        sub_ifd, sub_ifd_problem = {}, f"EXIF sub-IFD unreadable: {err}"
    else:
        sub_ifd_problem = ""
    first_problem = ""
    for name, tag, subsec_tag, in_sub_ifd in _TIME_TAGS:
        tags = sub_ifd if in_sub_ifd else exif
        if tag not in tags:
            continue
        # the three SubSecTime tags are all in the Exif sub-IFD, DateTime's too
        taken_at, problem = _parse_exif_time(name, tags[tag], sub_ifd.get(subsec_tag))
        if taken_at is not None:
            return taken_at, name, ""
        first_problem = first_problem or problem
    return None, "", first_problem or sub_ifd_problem or _NO_TIME_TAG


def _text(value) -> str | None:
    """An EXIF ASCII value as text (some writers store it as bytes), or None for any other kind."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ") if isinstance(value, str) else None


def _parse_exif_time(name: str, value, subsec) -> tuple[datetime | None, str]:
    """(the time `value` of tag `name` says, "") or (None, why it is no time)."""
    text = _text(value)
    match = _EXIF_TIME.fullmatch(text) if text is not None else None
    if match is None:
        return None, f"{name} {value!r} is not a date"
    try:
        taken_at = datetime(*map(int, match.groups()))
    except ValueError:  # "0000:00:00 00:00:00", what a camera without a set clock writes, or a 31 February
        return None, f"{name} {text!r} is not a date"
    subsec_text = _text(subsec)
    if subsec_text and subsec_text.isdigit():
        # SubSecTime's digits are the fraction of a second after the point: "52" is 0.52 s.
        taken_at = taken_at.replace(microsecond=int(subsec_text[:6].ljust(6, "0")))
    return taken_at, ""


def _gps_position(exif: Image.Exif) -> tuple[float | None, float | None, str]:
    """(latitude, longitude, "") in signed decimal degrees, or (None, None, why) when the GPS IFD holds a
    position that cannot be used; (None, None, "") when it holds none."""
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception as err:  # as in _exif_of
        return None, None, f"GPS unreadable: {err}"
    if not any(value_tag in gps for _, value_tag, _, _, _ in _GPS_AXES):
        return None, None, ""
    position = []
    for reference_tag, value_tag, axis, references, limit in _GPS_AXES:
        if value_tag not in gps:
            return None, None, f"GPS without a {axis}"
        reference = _text(gps.get(reference_tag))
        if not reference or reference.upper() not in references:
            return None, None, f"GPS {axis} reference {gps.get(reference_tag)!r} is not {' or '.join(references)}"
        degrees, problem = _degrees(gps[value_tag], axis, limit)
        if problem:
            return None, None, problem
        position.append(-degrees if reference.upper() == references[1] else degrees)
    latitude, longitude = position
    if latitude == 0 and longitude == 0:
        return None, None, "GPS 0, 0 (null island: what a receiver without a fix writes) is no position"
    return latitude, longitude, ""


def _degrees(value, axis: str, limit: float) -> tuple[float, str]:
    """Decimal degrees from EXIF's degrees, minutes, seconds (rationals), or (nan, why not)."""
    try:
        parts = [float(part) for part in (value if isinstance(value, tuple) else (value,))]
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan, f"GPS {axis} {value!r} is not degrees, minutes, seconds"
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(part) and part >= 0 for part in parts):
        return math.nan, f"GPS {axis} {value!r} is not degrees, minutes, seconds"
    degrees, minutes, seconds = (parts + [0.0, 0.0])[:3]
    # 60 itself is allowed: a writer rounding 59.9996 to two decimals writes it.
    if minutes > 60 or seconds > 60:
        return math.nan, f"GPS {axis} {value!r}: minutes and seconds must be under 60"
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        return math.nan, f"GPS {axis} {decimal:.6f}° is out of range (at most {limit:g}°)"
    return decimal, ""


def capture_table(paths: Sequence[str | Path], images: Sequence[str], n_jobs: int = 1) -> pd.DataFrame:
    """One row per photo (`paths`, named `images`): image, taken_at (ISO 8601, empty without a time),
    source, latitude, longitude (NaN without a position), problem, gps_problem (see `PhotoCapture`).

    Raises ValueError when `paths` and `images` differ in length, OSError (naming the path) for a
    file that cannot be opened."""
    if len(paths) != len(images):
        raise ValueError(f"{len(paths)} paths but {len(images)} image names: expected one name per path")
    captures = Parallel(n_jobs=n_jobs, batch_size=32)(delayed(read_capture)(path) for path in paths)
    rows = [{"image": image,
             "taken_at": capture.taken_at.isoformat() if capture.taken_at is not None else "",
             "source": capture.source,
             "latitude": math.nan if capture.latitude is None else capture.latitude,
             "longitude": math.nan if capture.longitude is None else capture.longitude,
             "problem": capture.problem,
             "gps_problem": capture.gps_problem}
            for image, capture in zip(images, captures)]
    return pd.DataFrame(rows, columns=CAPTURE_COLUMNS).astype({"latitude": float, "longitude": float})
