"""Decoding, checking and preprocessing photos.

OpenCV decodes to BGR; the published code converted with RGB2GRAY, which swaps the red and
blue weights. Here grayscale comes straight from the decoder (correct BT.601 weights), and all
arithmetic stays in uint8 on one channel: the published float64 copies of three identical
channels cost memory and time and carry no information.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from .files import sha256_hex

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class BadImage(ValueError):
    """The bytes are not an image this workflow can use; the message says why."""


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    channels: int  # as stored in the file: 1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha or CMYK
    bit_depth: int
    color_model: str  # "gray", "rgb", "cmyk", "palette"


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    channels: int
    bit_depth: int
    color_model: str
    content_hash: str
    phash: str


_JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_header(data: bytes) -> ImageHeader | None:
    """Size and colour model from a JPEG or PNG header, without decoding pixels.

    Knowing the size first lets oversized files be refused before they are decoded.
    Returns None for other formats (they are checked after decoding).
    """
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 29:
        width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
        channels, model = {0: (1, "gray"), 2: (3, "rgb"), 3: (3, "palette"),
                           4: (2, "gray"), 6: (4, "rgb")}.get(colour_type, (0, "unknown"))
        return ImageHeader(width, height, channels, depth, model)
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                pos += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
            if marker in _JPEG_SOF_MARKERS and pos + 10 <= len(data):
                depth, height, width, comps = struct.unpack(">BHHB", data[pos + 4:pos + 10])
                model = {1: "gray", 3: "rgb", 4: "cmyk"}.get(comps, "unknown")
                return ImageHeader(width, height, comps, depth, model)
            pos += 2 + length
    return None


def _decode(data: bytes, flags: int) -> np.ndarray:
    if not data:
        raise BadImage("empty file (0 bytes)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise BadImage("not a readable image (unknown format, corrupt or truncated)")
    if data.startswith(b"\xff\xd8") and data.rfind(b"\xff\xd9") < 0:
        # libjpeg fills a cut-off JPEG with grey and only warns: the end-of-image marker is the tell.
        raise BadImage("truncated JPEG (no end-of-image marker)")
    return image


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Check that `data` is a usable photo and describe it; raises BadImage with the reason."""
    header = read_header(data)
    if header is not None and header.width * header.height > max_pixels:
        raise BadImage(f"too large: {header.width}x{header.height} pixels exceeds "
                       f"ingest.max_pixels={max_pixels}")
    image = _decode(data, cv2.IMREAD_UNCHANGED)
    height, width = image.shape[:2]
    if width * height > max_pixels:
        raise BadImage(f"too large: {width}x{height} pixels exceeds ingest.max_pixels={max_pixels}")
    if min(width, height) < 8:
        raise BadImage(f"too small to identify anything: {width}x{height} pixels")
    channels = 1 if image.ndim == 2 else image.shape[2]
    bit_depth = 16 if image.dtype == np.uint16 else (32 if image.dtype == np.float32 else 8)
    model = header.color_model if header else ("gray" if channels <= 2 else "rgb")
    if header:
        channels = header.channels or channels
        bit_depth = header.bit_depth
    return ImageInfo(width=width, height=height, channels=channels, bit_depth=bit_depth,
                     color_model=model, content_hash=sha256_hex(data),
                     phash=perceptual_hash(to_gray8(image)))


def to_gray8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA, 8 or 16 bit) as one uint8 channel."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 3:
        code = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(image.shape[2])
        image = cv2.cvtColor(image, code) if code is not None else image[:, :, 0]
    return image


def perceptual_hash(gray: np.ndarray) -> str:
    """64-bit DCT perceptual hash (pHash) as 16 hex digits.

    Re-encoding, resizing and mild contrast changes move few bits, so a small Hamming
    distance finds the same photo saved twice.
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])  # the DC term only says how bright the photo is
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def hamming_distances(query: np.ndarray, catalogue: np.ndarray) -> np.ndarray:
    """Bit differences between each of `query` (uint64, Q) and each of `catalogue` (uint64, C)."""
    return np.bitwise_count(query[:, None] ^ catalogue[None, :]).astype(np.uint8)


def hashes_to_uint64(hashes) -> np.ndarray:
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


def jpeg_reduction(width: int, height: int, size: int) -> int:
    """Largest JPEG DCT downscale (1, 2, 4, 8) that still leaves the long side >= `size`.

    Decoding a 4000-pixel photo at 1/4 scale is several times faster than decoding it whole
    and resizing, and loses nothing a `size`-pixel square keeps.
    """
    factor = 1
    while factor < 8 and max(width, height) // (factor * 2) >= size:
        factor *= 2
    return factor


_REDUCED_GRAY = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
                 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def read_gray(data: bytes, reduction: int = 1) -> np.ndarray:
    """Decode to one uint8 channel, optionally at 1/2, 1/4 or 1/8 scale (JPEG only)."""
    image = _decode(data, _REDUCED_GRAY[reduction])
    return to_gray8(image)


def stretch_contrast(gray: np.ndarray) -> np.ndarray:
    """Map the darkest pixel to 0 and the brightest to 255.

    A constant image has no range to stretch and is returned unchanged (the published code
    divided by zero there and wrote NaNs).
    """
    low, high = int(gray.min()), int(gray.max())
    if high == low:
        return gray.copy()
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * (255.0 / (high - low)), 0, 255)
    return cv2.LUT(gray, np.round(lut).astype(np.uint8))


def square_image(gray: np.ndarray, size: int) -> np.ndarray:
    """The published preprocessing, done as described: `size`x`size` uint8 with the photo
    scaled to fit, its aspect ratio kept, centred on a black (zero) square, contrast stretched.

    The published code resized the photo to the square's full height before "padding", which
    stretched every landscape photo; here only the long side reaches `size`.
    The stretch uses the photo's own pixels, so the padding does not count as its darkest value.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got shape {gray.shape} dtype {gray.dtype}")
    height, width = gray.shape
    scale = size / max(height, width)
    new_w = max(1, min(size, round(width * scale)))
    new_h = max(1, min(size, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    photo = stretch_contrast(cv2.resize(gray, (new_w, new_h), interpolation=interpolation))
    square = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    square[top:top + new_h, left:left + new_w] = photo
    return square
