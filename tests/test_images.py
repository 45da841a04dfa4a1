import cv2
import numpy as np
import pytest
from conftest import REPO, encode, textured

from whaleid.images import (BadImage, hamming_distances, hashes_to_uint64, inspect_image,
                            jpeg_reduction, perceptual_hash, read_gray, read_header,
                            square_image, stretch_contrast)

MAX = 10_000_000
DATA = REPO / "tests" / "data"


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
