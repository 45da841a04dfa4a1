import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, encode, textured

from whaleid.data import images
from whaleid.data.images import (
    BadImage,
    hamming_distances,
    hashes_to_uint64,
    inspect_image,
    jpeg_reduction,
    perceptual_hash,
    read_gray,
    read_header,
    square_image,
    stretch_contrast,
)

MAX = 10_000_000
DATA = REPO / "tests" / "data"
LZW = [cv2.IMWRITE_TIFF_COMPRESSION, 5]
LOSSY_WEBP, LOSSLESS_WEBP = [cv2.IMWRITE_WEBP_QUALITY, 80], [cv2.IMWRITE_WEBP_QUALITY, 101]


def encoded(image: np.ndarray, suffix: str, flags: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(suffix, image, flags or [])
    assert ok
    return buffer.tobytes()


def with_alpha(image: np.ndarray) -> np.ndarray:
    return np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])


TIFF_LAYOUTS = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def handmade_tiff(pixels: np.ndarray, order: str = "<", big: bool = False, size_type: int = 3) -> bytes:
    """An uncompressed one-strip 8-bit TIFF of `pixels` (gray, or BGR stored as RGB) in byte order
    `order`, classic or BigTIFF, its width and height of TIFF type `size_type` (3 SHORT, 4 LONG,
    16 LONG8). OpenCV writes only little-endian classic TIFF."""
    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    strip = (pixels if samples == 1 else pixels[..., ::-1]).tobytes()
    field, count, entry, strip_at = ("Q", "Q", "HHQ", 16) if big else ("I", "H", "HHI", 8)
    tags = [(256, size_type, [width]), (257, size_type, [height]), (258, 3, [8] * samples), (259, 3, [1]),
            (262, 3, [1 if samples == 1 else 2]), (273, 4, [strip_at]), (277, 3, [samples]),
            (278, 4, [height]), (279, 4, [len(strip)])]
    inline = struct.calcsize(field)
    entry_size = struct.calcsize(order + entry) + inline
    directory_at = strip_at + len(strip)  # the strip first, so its offset is known up front
    extras_at = directory_at + struct.calcsize(order + count) + len(tags) * entry_size + inline
    entries, extras = [], b""
    for tag, kind, values in tags:
        value = struct.pack(f"{order}{len(values)}{TIFF_LAYOUTS[kind]}", *values)
        if len(value) > inline:  # too long for the entry: the entry holds where it is
            value, extras = struct.pack(order + field, extras_at + len(extras)), extras + value
        entries.append(struct.pack(order + entry, tag, kind, len(values)) + value.ljust(inline, b"\0"))
    magic = struct.pack(order + "HHHQ", 43, 8, 0, directory_at) if big else struct.pack(order + "HI", 42, directory_at)
    return ((b"II" if order == "<" else b"MM") + magic + strip + struct.pack(order + count, len(tags))
            + b"".join(entries) + struct.pack(order + field, 0) + extras)


def one_colour_tiff(width: int, height: int, value: int = 200) -> bytes:
    """What cv2.imencode writes for a `height`x`width` one-colour gray image as an LZW TIFF,
    made without that array (400 MB at 20,000x20,000, and seconds to encode): for an image
    8,192 or more pixels wide OpenCV stores one row per strip, and each row of one colour
    compresses to the same bytes."""
    row = encoded(np.full((1, width), value, np.uint8), ".tiff", LZW)
    (directory,) = struct.unpack_from("<I", row, 4)
    (count,) = struct.unpack_from("<H", row, directory)
    entries = [list(struct.unpack_from("<HHII", row, directory + 2 + 12 * i)) for i in range(count)]
    by_tag = {entry[0]: entry for entry in entries}
    strip = row[by_tag[273][3]:by_tag[273][3] + by_tag[279][3]]
    directory = 8 + len(strip) * height
    counts_at = directory + 2 + 12 * count + 4
    offsets_at = counts_at + 4 * height
    by_tag[257][3] = height
    by_tag[273][2:] = [height, offsets_at]
    by_tag[279][2:] = [height, counts_at]
    return b"".join([b"II*\x00", struct.pack("<I", directory), strip * height, struct.pack("<H", count),
                     *(struct.pack("<HHII", *entry) for entry in entries), struct.pack("<I", 0),
                     struct.pack(f"<{height}I", *[len(strip)] * height),
                     struct.pack(f"<{height}I", *range(8, 8 + len(strip) * height, len(strip)))])


def peak_memory_growth(setup: str, measured: str) -> tuple[str, float]:
    """Run `setup`, then `measured`, in a fresh Python with whaleid importable; return what
    `measured` printed and by how many MiB it raised the process's peak resident memory."""
    script = (f"import resource\n{setup}\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              f"{measured}\n"
              "print('peak growth KiB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, _, growth = done.stdout.rstrip().rpartition("peak growth KiB ")
    return printed, int(growth) / 1024


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if anything is decoded."""
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called")
    monkeypatch.setattr(images.cv2, "imdecode", refuse)


def test_colour_jpeg_is_described():
    info = inspect_image(encode(textured(60, 90)), MAX)
    assert (info.width, info.height, info.channels, info.bit_depth, info.color_model) == (90, 60, 3, 8, "rgb")
    assert len(info.content_hash) == 64 and len(info.phash) == 16


def test_grayscale_png_16bit_and_alpha_are_accepted():
    gray = inspect_image(encode(textured(40, 50, 1), ".png"), MAX)
    assert (gray.channels, gray.color_model) == (1, "gray")
    deep = inspect_image(encode(textured(40, 50).astype(np.uint16) * 257, ".png"), MAX)
    assert deep.bit_depth == 16
    rgba = np.dstack([textured(40, 50), np.full((40, 50), 128, np.uint8)])
    alpha = inspect_image(encode(rgba, ".png"), MAX)
    assert alpha.channels == 4
    # 16-bit and alpha decode to the same grayscale as their 8-bit, opaque source
    assert np.array_equal(read_gray(encode(rgba, ".png")), read_gray(encode(textured(40, 50), ".png")))
    assert np.abs(read_gray(encode(textured(40, 50).astype(np.uint16) * 257, ".png")).astype(int)
                  - read_gray(encode(textured(40, 50), ".png"))).max() <= 1


def test_cmyk_jpeg_is_recognised_and_decoded():
    # saved once with Pillow (`Image.convert("CMYK").save(...)`), as print workflows save photos
    data = (DATA / "cmyk.jpg").read_bytes()
    info = inspect_image(data, MAX)
    assert (info.channels, info.color_model) == (4, "cmyk")
    assert read_gray(data).shape == (48, 64)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is a text file, not a photo", "not a readable image"),
    (encode(textured(200, 300))[:1500], "not a readable image|truncated"),
    (encode(textured(200, 300), ".png")[:800], "not a readable image"),
])
def test_unusable_files_are_rejected_with_the_reason(data, reason):
    with pytest.raises(BadImage, match=reason):
        inspect_image(data, MAX)


def test_jpeg_missing_its_end_marker_counts_as_truncated():
    data = encode(textured(100, 100))
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(BadImage, match="truncated"):
        inspect_image(data[:-2], MAX)


def test_very_large_image_is_refused_from_its_header_before_decoding():
    data = encode(textured(400, 600))
    assert read_header(data).width == 600
    with pytest.raises(BadImage, match="too large: 600x400"):
        inspect_image(data, max_pixels=100_000)


PHOTO = textured(30, 50)
FORMATS = {  # name: (bytes, the chunk a WebP starts with)
    "bmp gray (palette)": (encoded(PHOTO[..., 0], ".bmp"), None),
    "bmp colour": (encoded(PHOTO, ".bmp"), None),
    "bmp alpha (v5 header)": (encoded(with_alpha(PHOTO), ".bmp"), None),
    "tiff gray": (encoded(PHOTO[..., 0], ".tiff"), None),
    "tiff colour lzw": (encoded(PHOTO, ".tiff", LZW), None),
    "tiff alpha": (encoded(with_alpha(PHOTO), ".tiff"), None),
    "tiff 16-bit": (encoded(PHOTO[..., 0].astype(np.uint16) * 257, ".tiff"), None),
    "webp lossy": (encoded(PHOTO, ".webp", LOSSY_WEBP), b"VP8 "),
    "webp lossless": (encoded(PHOTO, ".webp", LOSSLESS_WEBP), b"VP8L"),
    "webp lossless alpha": (encoded(with_alpha(PHOTO), ".webp", LOSSLESS_WEBP), b"VP8L"),
    "webp lossy alpha (extended)": (encoded(with_alpha(PHOTO), ".webp", LOSSY_WEBP), b"VP8X"),
}


@pytest.mark.parametrize("name", FORMATS)
def test_bmp_tiff_and_webp_are_described_from_their_header_as_they_decode(name):
    data, webp_chunk = FORMATS[name]
    if webp_chunk:
        assert data[12:16] == webp_chunk
    header = read_header(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (header.height, header.width) == decoded.shape[:2] == (30, 50)
    assert header.channels == (1 if decoded.ndim == 2 else decoded.shape[2])
    info = inspect_image(data, MAX)
    assert (info.width, info.height, info.channels) == (50, 30, header.channels)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("big, size_type", [(False, 3), (False, 4), (True, 3), (True, 4), (True, 16)])
@pytest.mark.parametrize("colour", [False, True])
def test_tiff_header_is_read_in_both_byte_orders_classic_and_big(order, big, size_type, colour):
    pixels = PHOTO if colour else PHOTO[..., 0].copy()
    data = handmade_tiff(pixels, order, big, size_type)
    assert data[:2] == (b"II" if order == "<" else b"MM")
    header = read_header(data)
    assert (header.width, header.height, header.channels, header.bit_depth, header.color_model) == (
        50, 30, 3 if colour else 1, 8, "rgb" if colour else "gray")
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), pixels)
    assert inspect_image(data, MAX).channels == header.channels


def test_core_and_top_down_bmp_headers_are_read():
    data = encoded(PHOTO, ".bmp")  # 14-byte file header, 40-byte BITMAPINFOHEADER, bottom-up rows
    rows = data[54:]
    core = (b"BM" + struct.pack("<IHHI", 26 + len(rows), 0, 0, 26)
            + struct.pack("<IHHHH", 12, 50, 30, 1, 24) + rows)  # BITMAPCOREHEADER (OS/2 1.x)
    header = read_header(core)
    assert (header.width, header.height, header.channels) == (50, 30, 3)
    assert cv2.imdecode(np.frombuffer(core, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (30, 50)
    top_down = data[:22] + struct.pack("<i", -30) + data[26:]
    assert read_header(top_down).height == 30
    assert np.array_equal(read_gray(top_down), read_gray(data)[::-1])


LARGE = textured(40, 60)
LARGE_FILES = {
    "jpeg": encoded(LARGE, ".jpg"),
    "png": encoded(LARGE, ".png"),
    "bmp": encoded(LARGE, ".bmp"),
    "tiff little-endian": encoded(LARGE, ".tiff", LZW),
    "tiff big-endian": handmade_tiff(LARGE, ">"),
    "bigtiff": handmade_tiff(LARGE, "<", big=True),
    "webp lossy": encoded(LARGE, ".webp", LOSSY_WEBP),
    "webp lossless": encoded(LARGE, ".webp", LOSSLESS_WEBP),
    "webp extended": encoded(with_alpha(LARGE), ".webp", LOSSY_WEBP),
}


@pytest.mark.parametrize("name", LARGE_FILES)
def test_every_format_above_max_pixels_is_refused_before_decoding(name, no_decoding):
    with pytest.raises(BadImage, match="too large: 60x40 pixels exceeds ingest.max_pixels=2000"):
        inspect_image(LARGE_FILES[name], max_pixels=2000)


def test_one_colour_tiff_is_what_opencv_writes():
    made = one_colour_tiff(9000, 50, value=7)
    assert made == encoded(np.full((50, 9000), 7, np.uint8), ".tiff", LZW)
    assert read_header(one_colour_tiff(20_000, 20_000)).width == 20_000


def test_huge_one_colour_tiff_is_refused_without_its_memory(tmp_path):
    """The hostile file of the issue: 4.7 MB on disk, 400 MB once decoded. Refused from its
    header, inspecting it raises the peak memory by far less than its pixels would take."""
    path = tmp_path / "hostile.tif"
    path.write_bytes(one_colour_tiff(20_000, 20_000))
    assert path.stat().st_size < 5_000_000
    printed, growth_mib = peak_memory_growth(
        f"from whaleid.data.images import BadImage, inspect_image\ndata = open({str(path)!r}, 'rb').read()",
        "try:\n    inspect_image(data, 100_000_000)\nexcept BadImage as err:\n    print(err)")
    assert "too large: 20000x20000 pixels exceeds ingest.max_pixels=100000000" in printed
    assert growth_mib < 20, f"inspecting raised the peak memory by {growth_mib:.0f} MiB"


@pytest.mark.parametrize("suffix, image", [
    (".ppm", PHOTO), (".pgm", PHOTO[..., 0]), (".pam", PHOTO), (".ras", PHOTO), (".gif", PHOTO),
    (".hdr", PHOTO.astype(np.float32) / 255), (".pfm", PHOTO.astype(np.float32) / 255),
    (".jp2", textured(64, 64, 1)), (".avif", PHOTO),
])
def test_formats_opencv_decodes_but_ingest_does_not_accept_are_refused_undecoded(suffix, image, monkeypatch):
    data = encoded(image, suffix)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is not None
    assert read_header(data) is None
    monkeypatch.setattr(images.cv2, "imdecode", lambda *args: pytest.fail("decoded"))
    with pytest.raises(BadImage, match=r"not a readable image \(unknown format, corrupt or truncated; "
                                       r"accepted formats: JPEG, PNG, BMP, TIFF, WebP\)"):
        inspect_image(data, MAX)


def _patched(data: bytes, offset: int, layout: str, *values) -> bytes:
    return data[:offset] + struct.pack(layout, *values) + data[offset + struct.calcsize(layout):]


BMP, GRAY_BMP = encoded(PHOTO, ".bmp"), encoded(PHOTO[..., 0], ".bmp")
TIFF, WEBP = encoded(PHOTO, ".tiff"), encoded(PHOTO, ".webp", LOSSY_WEBP)


BAD_HEADERS = {  # name: (bytes, why they are refused)
    "bmp cut short": (BMP[:20], r"truncated BMP header \(it needs 30 bytes, the file has 20\)"),
    "bmp palette cut short": (GRAY_BMP[:100], r"truncated BMP header \(its 256-colour palette is cut short\)"),
    "bmp header of odd size": (_patched(BMP, 14, "<I", 14), r"BMP header of unknown size \(14 bytes\)"),
    "bmp width 0": (_patched(BMP, 18, "<i", 0), r"its header gives a size of 0x30 pixels"),
    "bmp 2 bits per pixel": (_patched(BMP, 28, "<H", 2), r"BMP with 2 bits per pixel"),
    "tiff cut short": (TIFF[:6], r"truncated TIFF header \(it needs 8 bytes, the file has 6\)"),
    "tiff cut in half": (TIFF[:len(TIFF) // 2], r"truncated TIFF header"),  # OpenCV writes the directory last
    "tiff bits per sample cut off": (handmade_tiff(PHOTO)[:-6], r"truncated TIFF header"),
    "tiff width given twice": (handmade_tiff(PHOTO, ">", size_type=4).replace(b"\x01\x01\x00\x04", b"\x01\x00\x00\x04"),
                               r"TIFF tag ImageWidth appears twice"),
    "tiff width as a rational": (handmade_tiff(PHOTO, ">").replace(b"\x01\x00\x00\x03", b"\x01\x00\x00\x05"),
                                 r"TIFF tag ImageWidth has type 5 and 1 values, not unsigned integers"),
    "tiff endless directory": (_patched(handmade_tiff(PHOTO, ">"), 8 + PHOTO.size, ">H", 5000),
                               r"TIFF image directory of 5,000 entries \(at most 4,096 are read\)"),
    "tiff without height": (handmade_tiff(PHOTO, ">").replace(b"\x01\x01\x00\x03", b"\x01\x07\x00\x03"),
                            r"TIFF image directory without ImageWidth or ImageLength"),
    "webp cut short": (WEBP[:14], r"truncated WebP header \(it needs 16 bytes, the file has 14\)"),
    "webp frame header cut short": (WEBP[:26], r"truncated WebP header \(it needs 30 bytes, the file has 26\)"),
    "webp unknown chunk": (WEBP[:12] + b"ALPH" + WEBP[16:],
                           r"WebP whose first chunk is b'ALPH', not VP8, VP8L or VP8X"),
    "png cut short": (encoded(PHOTO, ".png")[:20], r"truncated PNG header"),
}


@pytest.mark.parametrize("name", BAD_HEADERS)
def test_cut_or_malformed_headers_are_rejected_with_the_reason(name, no_decoding):
    data, reason = BAD_HEADERS[name]
    with pytest.raises(BadImage, match="not a readable image: " + reason):
        inspect_image(data, MAX)


def test_square_image_pads_a_landscape_photo_without_stretching_it():
    photo = np.full((50, 100), 200, np.uint8)
    photo[:, :50] = 100  # left half darker: stretched to 0..255 inside the photo
    square = square_image(photo, 64)
    assert square.shape == (64, 64) and square.dtype == np.uint8
    rows = np.flatnonzero(square.max(axis=1) > 0)
    # the photo keeps its 2:1 shape: 32 rows tall, centred, zero padding above and below
    assert (rows.min(), rows.max()) == (16, 47)
    assert square[:16].max() == 0 and square[48:].max() == 0
    assert square[32, 5] == 0 and square[32, 60] == 255


def test_square_image_handles_portrait_odd_sizes_and_tiny_photos():
    for height, width in [(101, 37), (37, 101), (1, 9), (7, 7), (899, 897)]:
        square = square_image(textured(height, width, 1), 96)
        assert square.shape == (96, 96)
        assert square.max() == 255


def test_constant_image_stays_constant_instead_of_nan():
    square = square_image(np.full((30, 40), 77, np.uint8), 32)
    assert np.isfinite(square).all()
    assert set(np.unique(square)) <= {0, 77}


def test_stretch_contrast_maps_range_to_full_scale():
    image = np.array([[50, 100], [150, 150]], np.uint8)
    assert stretch_contrast(image).tolist() == [[0, 128], [255, 255]]


def test_grayscale_uses_the_right_channel_weights():
    """Pure blue and pure red must not swap: BT.601 weighs red 0.299 and blue 0.114."""
    blue = np.zeros((16, 16, 3), np.uint8)
    blue[..., 0] = 255
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 2] = 255
    assert read_gray(encode(blue, ".png")).mean() == pytest.approx(29, abs=1)
    assert read_gray(encode(red, ".png")).mean() == pytest.approx(76, abs=1)


def test_reduced_decode_of_a_large_jpeg_gives_the_same_square():
    photo = textured(1600, 2400, seed=3, cell=64)
    data = encode(photo, quality=95)
    assert jpeg_reduction(2400, 1600, 256) == 8
    assert jpeg_reduction(2400, 1600, 896) == 2
    assert jpeg_reduction(300, 200, 896) == 1
    full = square_image(read_gray(data, 1), 256).astype(int)
    reduced = square_image(read_gray(data, 8), 256).astype(int)
    assert np.abs(full - reduced).mean() < 3


def test_perceptual_hash_finds_a_resaved_photo_and_separates_others():
    photo = textured(300, 400, seed=1)
    resaved = cv2.resize(photo, (360, 270))
    same = [perceptual_hash(read_gray(encode(photo, quality=95))),
            perceptual_hash(read_gray(encode(resaved, quality=60)))]
    other = perceptual_hash(read_gray(encode(textured(300, 400, seed=2))))
    distances = hamming_distances(hashes_to_uint64(same[:1]), hashes_to_uint64([same[1], other]))[0]
    assert distances[0] <= 4
    assert distances[1] >= 16
