"""The photos as the pages show them: thumbnails as data URIs (PNG, or JPEG for pages of hundreds
of photos), and a query beside a catalogue photo with their inlier matches drawn (`match_image`).
numpy and OpenCV.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from whaleid.data.images import shrink_to

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


def jpeg_uri(image: np.ndarray, side: int, quality: int = 85) -> str:
    """A JPEG data URI of `image` (2-D uint8, or H x W x 3 BGR), resized to at most `side`
    pixels on its longest side: for pages of hundreds of photos, where PNGs would weigh ten
    times more."""
    ok, jpeg = cv2.imencode(".jpg", _fitted(image, side), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode an image of shape {np.shape(image)} as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


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
