"""Decoding, checking and preprocessing photos.

OpenCV decodes to BGR; the published code converted with RGB2GRAY, which swaps the red and
blue weights. Here grayscale comes straight from the decoder (correct BT.601 weights), and all
arithmetic stays in uint8 on one channel: the published float64 copies of three identical
channels cost memory and time and carry no information.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from whaleid.io.files import sha256_hex

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
# classic TIFF (42) and BigTIFF (43), little- and big-endian: OpenCV's libtiff decodes all four
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TIFF_INTEGER_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}  # BYTE, SHORT, LONG, LONG8
_TIFF_TAGS = {256: "ImageWidth", 257: "ImageLength", 258: "BitsPerSample",
              262: "PhotometricInterpretation", 277: "SamplesPerPixel"}
_TIFF_MAX_ENTRIES = 4096  # libtiff refuses a longer directory as corrupt
_TIFF_MODELS = {0: "gray", 1: "gray", 2: "rgb", 3: "palette", 5: "cmyk", 6: "rgb"}
UNKNOWN_FORMAT = ("not a readable image (unknown format, corrupt or truncated; "
                  "accepted formats: JPEG, PNG, BMP, TIFF, WebP)")


def _require(image_format: str, data: bytes, end: int) -> None:
    """Raise BadImage naming the format unless `data` holds its first `end` bytes (a header cut
    short, or an offset in it that points past the end of the file)."""
    if end > len(data):
        raise BadImage(f"not a readable image: truncated {image_format} header "
                       f"(it needs {end:,} bytes, the file has {len(data):,})")


def _unpack(image_format: str, layout: str, data: bytes, offset: int) -> tuple:
    """`struct.unpack_from(layout, data, offset)`, raising BadImage when `data` ends first."""
    _require(image_format, data, offset + struct.calcsize(layout))
    return struct.unpack_from(layout, data, offset)


def _png_header(data: bytes) -> ImageHeader:
    """The size and colour model in a PNG's IHDR chunk."""
    width, height, depth, colour_type = _unpack("PNG", ">IIBB", data, 16)
    channels, model = {0: (1, "gray"), 2: (3, "rgb"), 3: (3, "palette"),
                       4: (2, "gray"), 6: (4, "rgb")}.get(colour_type, (0, "unknown"))
    return ImageHeader(width, height, channels, depth, model)


def _jpeg_header(data: bytes) -> ImageHeader:
    """The size and components in a JPEG's first frame (SOF) header."""
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
    raise BadImage("not a readable image: JPEG without a frame header (corrupt or truncated)")


def _bmp_header(data: bytes) -> ImageHeader:
    """The size and pixel format in a BMP's BITMAPCOREHEADER (12 bytes) or BITMAPINFOHEADER
    (40 bytes, or one of its longer successors, which keep its first fields)."""
    (header_size,) = _unpack("BMP", "<I", data, 14)
    if header_size == 12:
        width, height, _, bits = _unpack("BMP", "<HHHH", data, 18)
        colours, entry_size = 0, 3
    elif header_size >= 16:
        width, height, _, bits = _unpack("BMP", "<iiHH", data, 18)
        colours = _unpack("BMP", "<I", data, 46)[0] if header_size >= 36 else 0
        entry_size = 4
    else:
        raise BadImage(f"not a readable image: BMP header of unknown size ({header_size} bytes)")
    height = abs(height)  # a negative height means the rows are stored top-down
    if bits in (1, 4, 8):
        gray = _bmp_palette_is_gray(data, 14 + header_size, colours or 1 << bits, entry_size)
        return ImageHeader(width, height, 1 if gray else 3, bits, "gray" if gray else "palette")
    if bits in (16, 24, 32):
        channels = 4 if bits == 32 else 3
        return ImageHeader(width, height, channels, bits // channels, "rgb")  # 16 bits: 5 a channel
    raise BadImage(f"not a readable image: BMP with {bits} bits per pixel (1, 4, 8, 16, 24 or 32 are read)")


def _bmp_palette_is_gray(data: bytes, start: int, colours: int, entry_size: int) -> bool:
    """Whether every colour of the palette at `start` has equal blue, green and red: OpenCV
    decodes such a BMP to one channel."""
    palette = data[start:start + colours * entry_size]
    if len(palette) < colours * entry_size:
        raise BadImage(f"not a readable image: truncated BMP header (its {colours}-colour palette is cut short)")
    return palette[0::entry_size] == palette[1::entry_size] == palette[2::entry_size]


def _tiff_header(data: bytes) -> ImageHeader:
    """The size, samples and colour model in a TIFF's (or BigTIFF's) first image directory,
    the image cv2.imdecode decodes."""
    order = "<" if data.startswith(b"II") else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    offset_layout, count_layout, entry_layout = ("Q", "Q", "HHQ") if big else ("I", "H", "HHI")
    offset_size = struct.calcsize(offset_layout)
    (directory,) = _unpack("TIFF", order + offset_layout, data, 8 if big else 4)
    (count,) = _unpack("TIFF", order + count_layout, data, directory)
    if count > _TIFF_MAX_ENTRIES:
        raise BadImage(f"not a readable image: TIFF image directory of {count:,} entries "
                       f"(at most {_TIFF_MAX_ENTRIES:,} are read)")
    first_entry = directory + struct.calcsize(count_layout)
    entry_size = struct.calcsize(order + entry_layout) + offset_size
    _require("TIFF", data, first_entry + count * entry_size)
    values: dict[int, int] = {}
    for at in range(first_entry, first_entry + count * entry_size, entry_size):
        tag, kind, n = _unpack("TIFF", order + entry_layout, data, at)
        if tag not in _TIFF_TAGS:
            continue
        if tag in values:
            # readers disagree on which copy wins, so the size would be a guess
            raise BadImage(f"not a readable image: TIFF tag {_TIFF_TAGS[tag]} appears twice")
        values[tag] = _tiff_first_value(data, order, _TIFF_TAGS[tag], kind, n, at + entry_size - offset_size,
                                        offset_layout)
    if 256 not in values or 257 not in values:
        raise BadImage("not a readable image: TIFF image directory without ImageWidth or ImageLength")
    photometric = values.get(262)
    channels = 3 if photometric == 3 else values.get(277, 1)  # a palette decodes to colour
    return ImageHeader(values[256], values[257], channels, values.get(258, 1),
                       _TIFF_MODELS.get(photometric, "unknown"))


def _tiff_first_value(data: bytes, order: str, name: str, kind: int, count: int, field_at: int,
                      offset_layout: str) -> int:
    """The first value of a TIFF tag whose value field is at `field_at`: held in the field when
    all its values fit there, else at the offset the field holds."""
    layout = _TIFF_INTEGER_TYPES.get(kind)
    if layout is None or count < 1:
        raise BadImage(f"not a readable image: TIFF tag {name} has type {kind} and {count} values, "
                       "not unsigned integers")
    at = field_at
    if count * struct.calcsize(layout) > struct.calcsize(offset_layout):
        (at,) = _unpack("TIFF", order + offset_layout, data, field_at)
    return _unpack("TIFF", order + layout, data, at)[0]


def _webp_header(data: bytes) -> ImageHeader:
    """The size and alpha in a WebP's first chunk: VP8 (lossy), VP8L (lossless) or VP8X
    (extended: its canvas, which bounds every frame)."""
    (chunk,) = _unpack("WebP", "4s", data, 12)
    if chunk == b"VP8 ":
        start_code, width, height = _unpack("WebP", "<3sHH", data, 23)
        if start_code != b"\x9d\x01\x2a":
            raise BadImage("not a readable image: WebP VP8 chunk without a key frame start code")
        return ImageHeader(width & 0x3FFF, height & 0x3FFF, 3, 8, "rgb")  # the top 2 bits are a scale hint
    if chunk == b"VP8L":
        signature, bits = _unpack("WebP", "<BI", data, 20)
        if signature != 0x2F:
            raise BadImage("not a readable image: WebP VP8L chunk without its signature byte")
        alpha = (bits >> 28) & 1
        return ImageHeader((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4 if alpha else 3, 8, "rgb")
    if chunk == b"VP8X":
        flags, width, height = _unpack("WebP", "<B3x3s3s", data, 20)
        return ImageHeader(int.from_bytes(width, "little") + 1, int.from_bytes(height, "little") + 1,
                           4 if flags & 0x10 else 3, 8, "rgb")
    raise BadImage(f"not a readable image: WebP whose first chunk is {chunk!r}, not VP8, VP8L or VP8X")


def _header_reader(data: bytes) -> Callable[[bytes], ImageHeader] | None:
    """The header reader for the format `data` starts like, or None for other formats."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header
    if data.startswith(_PNG_SIGNATURE):
        return _png_header
    if data.startswith(b"BM"):
        return _bmp_header
    if data[:4] in _TIFF_SIGNATURES:
        return _tiff_header
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_header
    return None


def read_header(data: bytes) -> ImageHeader | None:
    """Size and colour model from the header of a JPEG, PNG, BMP, TIFF or WebP, without
    decoding pixels; None when `data` starts like none of them.

    Knowing the size first lets oversized files be refused before they are decoded.
    Raises BadImage when the header is cut short, malformed or gives a width or height of 0.
    """
    reader = _header_reader(data)
    if reader is None:
        return None
    header = reader(data)
    if header.width <= 0 or header.height <= 0:
        raise BadImage(f"not a readable image: its header gives a size of {header.width}x{header.height} pixels")
    return header


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


def _size_problem(width: int, height: int, max_pixels: int) -> str | None:
    """Why a `width`x`height` photo cannot be used, or None when it can."""
    if width * height > max_pixels:
        return f"too large: {width}x{height} pixels exceeds ingest.max_pixels={max_pixels}"
    if min(width, height) < 8:
        return f"too small to identify anything: {width}x{height} pixels"
    return None


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Check that `data` is a usable photo and describe it; raises BadImage with the reason.

    Only JPEG, PNG, BMP, TIFF and WebP are accepted, and their size is checked from the header
    before anything is decoded: a small file can hold a huge image (a one-colour 20,000x20,000
    TIFF is 4.7 MB and decodes to 400 MB), and OpenCV would decode other formats too.
    """
    if not data:
        raise BadImage("empty file (0 bytes)")
    header = read_header(data)
    if header is None:
        raise BadImage(UNKNOWN_FORMAT)
    problem = _size_problem(header.width, header.height, max_pixels)
    if problem:
        raise BadImage(problem)
    image = _decode(data, cv2.IMREAD_UNCHANGED)
    height, width = image.shape[:2]
    problem = _size_problem(width, height, max_pixels)  # in case a decoder disagrees with the header
    if problem:
        raise BadImage(problem)
    channels = header.channels or (1 if image.ndim == 2 else image.shape[2])
    return ImageInfo(width=width, height=height, channels=channels, bit_depth=header.bit_depth,
                     color_model=header.color_model, content_hash=sha256_hex(data),
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


# These apply a JPEG's EXIF orientation, as the greyscale ones do (IMREAD_UNCHANGED does not).
_REDUCED_COLOUR = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                   8: cv2.IMREAD_REDUCED_COLOR_8}


def read_colour(data: bytes, reduction: int = 1) -> np.ndarray:
    """Decode to BGR uint8 (a grey photo's three channels equal; 16 bits a channel to 8, alpha
    dropped), optionally at 1/2, 1/4 or 1/8 scale (JPEG only), as `read_gray` decodes."""
    return _decode(data, _REDUCED_COLOUR[reduction])


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


def shrink_to(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` resized (area-averaged) so that its longest side is at most `max_side` pixels;
    never enlarged."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


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
