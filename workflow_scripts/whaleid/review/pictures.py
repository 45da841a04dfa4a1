"""The photos as the pages show them: the gallery's thumbnails as data URIs and a query beside a
catalogue photo with their inlier matches drawn (`match_image`); the review page's thumbnails of
the photos themselves, in colour and whole, as JPEG files in a folder beside it
(`write_thumbnails`), and where in such a photo a position in its square lies (`in_photo_frame`).
numpy and OpenCV.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from whaleid.data.images import BadImage, jpeg_reduction, read_colour, shrink_to
from whaleid.io.files import atomic_folder

THUMBNAIL_SIDE = 128
# The colour of inlier lines (BGR): bright on grey photos.
LINE_COLOUR = (60, 220, 60)


def _fitted(square: np.ndarray, side: int) -> np.ndarray:
    """`square` as uint8, resized to at most `side` pixels on its longest side (never enlarged)."""
    image = np.asarray(square)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"a thumbnail needs a 2-D image (or H x W x C), got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return shrink_to(image, side)


def png_uri(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def thumbnail_uri(square: np.ndarray, side: int = THUMBNAIL_SIDE) -> str:
    """A PNG data URI of `square` (a 2-D uint8 image, or H x W x C), resized to at most `side`
    pixels on its longest side (never enlarged)."""
    return png_uri(_fitted(square, side))


def _colour(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[:, :, :3]


def match_image(query: np.ndarray, photo: np.ndarray, lines: np.ndarray, side: int = THUMBNAIL_SIDE,
                gap: int = 6) -> np.ndarray:
    """The query's square and a catalogue photo's side by side (each `side` pixels, `gap`
    apart), with each of `lines` (n, 4: query x, y, photo x, y as shares of each square's side)
    drawn from the query to the photo: a BGR image (side, 2 * side + gap, 3)."""
    lines = np.asarray(lines, np.float64).reshape(-1, 4)
    canvas = np.full((side, 2 * side + gap, 3), 255, np.uint8)
    for offset, square in ((0, query), (side + gap, photo)):
        image = _colour(cv2.resize(_fitted(square, 4 * side), (side, side), interpolation=cv2.INTER_AREA))
        canvas[:, offset:offset + side] = image
    for qx, qy, px, py in lines:
        start = (int(round(qx * side)), int(round(qy * side)))
        end = (int(round(side + gap + px * side)), int(round(py * side)))
        cv2.line(canvas, start, end, LINE_COLOUR, 1, cv2.LINE_AA)
        cv2.circle(canvas, start, 2, LINE_COLOUR, -1, cv2.LINE_AA)
        cv2.circle(canvas, end, 2, LINE_COLOUR, -1, cv2.LINE_AA)
    return canvas


# --- the review page's thumbnails: the photos themselves ----------------------------------------

# JPEG at this quality shows no artefact a person would take for a mark, at a tenth of a PNG's size.
THUMBNAIL_QUALITY = 85


@dataclass(frozen=True)
class Original:
    """A photo file to make a thumbnail of: its `path`, and its `width` and `height` as the
    manifest gives them (0: unknown), which let a large JPEG be decoded at reduced scale."""

    path: Path
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail written: its `file` name in the thumbnails folder, and the `width` and
    `height` of the frame it shows, the photo as decoded (EXIF orientation applied; a JPEG's at
    the reduced scale it was decoded at, so that only their ratio is the photo's own)."""

    file: str
    width: int
    height: int


def read_photo(original: Original, long_side: int) -> np.ndarray:
    """The photo at `original` in colour (`images.read_colour`: decoded as preprocessing decodes
    it, EXIF orientation applied), a JPEG at the smallest scale that keeps its long side at least
    `long_side`.
    Raises BadImage naming the file where it cannot be read."""
    width, height = original.width, original.height
    reduction = jpeg_reduction(width, height, long_side) if width and height else 1
    try:
        data = Path(original.path).read_bytes()
    except OSError as error:
        raise BadImage(f"{original.path}: the photo cannot be read for its thumbnail: {error}") from error
    try:
        return read_colour(data, reduction)
    except BadImage as error:
        raise BadImage(f"{original.path}: {error}: no thumbnail can be made of it") from error


def thumbnail_jpeg(image: np.ndarray, long_side: int, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """`image` (2-D uint8, or H x W x 3 BGR) as JPEG bytes, its long side shrunk to at most
    `long_side` (never enlarged); a grey photo (three equal channels) as one channel, which
    JPEG holds in less."""
    small = shrink_to(np.asarray(image), long_side)
    if small.ndim == 3 and np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 0],
                                                                                           small[..., 2]):
        small = np.ascontiguousarray(small[..., 0])
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode an image of shape {small.shape} as JPEG")
    return jpeg.tobytes()


def thumbnail_file(name: str) -> str:
    """The file name of the thumbnail of the photo `name`: its stem in characters that every file
    system and URL take as they are, and a short hash of the whole name, so that no two photos'
    names give one file."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem).lstrip(".")[:64]
    return f"{stem}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:10]}.jpg"


def write_thumbnails(photos: Mapping[str, Original | np.ndarray], folder: str | Path, long_side: int, *,
                     n_jobs: int = 1) -> dict[str, Thumbnail]:
    """A JPEG thumbnail (`thumbnail_jpeg`, long side at most `long_side`) of each of `photos`
    (name: its file, `read_photo`, or an image already decoded, such as its preprocessed square),
    named `thumbnail_file`, in `folder`, which holds them alone: written whole beside it, then
    renamed onto it, so that a killed job leaves no half-filled folder. `n_jobs` photos are made
    at once (OpenCV lets go of Python's lock while it decodes). Returns each photo's Thumbnail;
    raises BadImage naming a photo that cannot be read."""
    folder = Path(folder)
    files = {name: thumbnail_file(name) for name in photos}
    if len(set(files.values())) < len(files):
        raise ValueError(f"two photos' thumbnails would share a file name in {folder}")

    def write(name: str) -> Thumbnail:
        photo = photos[name]
        image = read_photo(photo, long_side) if isinstance(photo, Original) else np.asarray(photo)
        (partial / files[name]).write_bytes(thumbnail_jpeg(image, long_side))
        return Thumbnail(files[name], image.shape[1], image.shape[0])

    with atomic_folder(folder) as partial, ThreadPoolExecutor(max(1, n_jobs)) as pool:
        thumbnails = dict(zip(photos, pool.map(write, photos)))
    return thumbnails


def in_photo_frame(shares: np.ndarray, width: int, height: int) -> np.ndarray:
    """Positions (n, 2: x, y) given as shares of the side of the square that centres a `width`
    x `height` photo, as preprocessing pads it, as shares of the photo's own width and height:
    where they lie in the photo, at any resolution. The local method's keypoints lie in that
    square, whether found on the preprocessed square or, with local.max_side, on the photo itself
    (`keypoints.extract_photo_features`). A position in the padding falls outside 0 to 1."""
    xy = np.asarray(shares, np.float64).reshape(-1, 2)
    frame = np.array([width, height], np.float64)
    long_side = frame.max()
    return (xy * long_side - (long_side - frame) / 2) / frame
