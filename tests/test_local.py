"""The `local` method: SIFT keypoints (`local.keypoints`), LNBNN voting and RANSAC verification
(`local.catalogue`, `local.geometry`), and the five answers made from its inlier counts (`identification`).

The photos are synthetic: a "pattern" is a grey square with a few hundred random ellipses and
lines drawn with a fixed seed (one seed, one individual), and a photo is a `view` of it,
rotated, scaled, shifted and re-lit. Everything is deterministic: OpenCV's RANSAC seeds its own
generator, and the catalogues are small enough for faiss's exact search.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache

import cv2
import numpy as np
import pandas as pd
import pytest

import whaleid.methods.local.catalogue as local_catalogue
import whaleid.methods.local.keypoints as local_keypoints
from whaleid.data.images import read_gray, square_image
from whaleid.identification.answers import final_answers
from whaleid.methods.local.catalogue import LocalCatalogue, _best_per_key, match_queries
from whaleid.methods.local.chunks import chunk_rows, parse_chunk
from whaleid.methods.local.geometry import fit_inliers, guided_matches, inlier_matches, ratio_matches, root_sift
from whaleid.methods.local.keypoints import (
    build_keypoint_cache,
    build_photo_keypoint_cache,
    content_mask,
    extract_features,
    extract_photo_features,
    feature_dtype,
    feature_rows,
    join_keypoint_caches,
    keep_on_animal,
    photo_at_max_side,
    photo_feature_rows,
    read_keypoint_cache,
    unpack,
    write_kept_keypoints,
)
from whaleid.methods.local.pairs import checked_before
from whaleid.methods.local.pooling import individual_scores, shortlist_candidates
from whaleid.methods.local.recall import shortlist_recall
from whaleid.methods.local.verifier import FEATURES
from whaleid.settings import KeypointSettings, MatchSettings
from whaleid.vocabulary import NEW_WHALE

SIDE = 256
SETTINGS = KeypointSettings.defaults(n_features=200, image_size=SIDE)
MATCHING = MatchSettings.defaults()
TRANSFORMS = ["similarity", "affine", "homography"]
# A photo of the same individual matches with many inliers (82 to 114 observed below); two
# individuals' photos with a handful, chance matches that a minimal sample always fits (0 to 9
# observed over all the pairs of twelve individuals).
MANY_INLIERS = 40
FEW_INLIERS = 10


@cache
def pattern(seed: int, side: int = 512) -> np.ndarray:
    """One individual's markings: random ellipses and lines on grey, slightly blurred."""
    rng = np.random.default_rng(seed)
    image = np.full((side, side), 110, np.uint8)
    for _ in range(220):
        centre = tuple(int(v) for v in rng.integers(0, side, 2))
        axes = tuple(int(v) for v in rng.integers(3, 18, 2))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(0, 256)), -1,
                    cv2.LINE_AA)
    for _ in range(30):
        start, end = rng.integers(0, side, (2, 2))
        cv2.line(image, tuple(map(int, start)), tuple(map(int, end)), int(rng.integers(0, 256)),
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    image.flags.writeable = False  # shared by the cache
    return image


def view_matrix(degrees: float = 0.0, scale: float = 1.0, shift=(0, 0), size: int = SIDE, source: int = 512
                ) -> np.ndarray:
    """Where a `view` puts each point of its `source`-pixel pattern: a 2x3 affine matrix."""
    centre = source / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), degrees, scale)
    matrix[:, 2] += np.array([size / 2 - centre, size / 2 - centre]) + shift
    return matrix


def view(seed: int, degrees: float = 0.0, scale: float = 1.0, shift=(0, 0), gain: float = 1.0,
         offset: float = 0.0, gamma: float = 1.0, size: int = SIDE) -> np.ndarray:
    """A `size` square photo of individual `seed`'s pattern: the middle of it, rotated by
    `degrees` and scaled about its centre, shifted by `shift` pixels, then re-lit."""
    source = pattern(seed)
    matrix = view_matrix(degrees, scale, shift, size, source.shape[0])
    photo = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lit = (photo / 255.0) ** gamma * 255 * gain + offset
    return np.clip(np.rint(lit), 0, 255).astype(np.uint8)


def keypoints(square: np.ndarray, settings: KeypointSettings = SETTINGS) -> tuple[np.ndarray, np.ndarray]:
    """Positions and RootSIFT descriptors, as matching compares them."""
    xy, descriptors = extract_features(square, settings)
    return xy, root_sift(descriptors)


def count_inliers(query_xy: np.ndarray, query_descriptors: np.ndarray, photo_xy: np.ndarray,
                  photo_descriptors: np.ndarray, settings: MatchSettings, image_size: int) -> int:
    """The inliers of one photo pair, as `LocalCatalogue.verify` counts them: ratio-test matches,
    then the RANSAC fit."""
    (rows, matched, _), = ratio_matches(query_descriptors, [photo_descriptors], settings.ratio)
    return fit_inliers(query_xy[rows], photo_xy[matched], settings, image_size)


def inliers(a: np.ndarray, b: np.ndarray, transform: str = "similarity", settings: KeypointSettings = SETTINGS) -> int:
    return count_inliers(*keypoints(a, settings), *keypoints(b, settings), replace(MATCHING, transform=transform), SIDE)


# The same individual photographed again: turned 12 degrees, 15% smaller, moved, brighter
# with less contrast in the shadows.
def relit_view(seed: int, degrees: float = 12.0) -> np.ndarray:
    return view(seed, degrees=degrees, scale=0.85, shift=(6, -4), gain=1.2, offset=-15, gamma=0.8)


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_photo_of_the_same_individual_matches_with_many_inliers(transform):
    """Upright descriptors still match across a 12 degree turn, a rescale and new lighting."""
    assert inliers(view(1), relit_view(1), transform) >= MANY_INLIERS  # 82 observed for each transform


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_photos_of_different_individuals_match_with_few_inliers(transform):
    """Chance matches between different patterns do not agree on one transform."""
    found = [inliers(view(1), relit_view(seed), transform) for seed in range(2, 8)]
    assert max(found) <= FEW_INLIERS, found  # 0 to 4 observed


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_rotation_invariant_descriptors_match_a_photo_turned_a_quarter(transform):
    """With `upright` off each keypoint has its own orientation, so a photo turned 90 degrees
    matches; upright descriptors, which assume photos share an orientation, do not."""
    turned = relit_view(1, degrees=90)
    rotating = replace(SETTINGS, n_features=200, image_size=SIDE, upright=False)
    assert inliers(view(1), turned, transform, rotating) >= MANY_INLIERS  # 114 observed
    assert inliers(view(1), turned, transform, SETTINGS) <= FEW_INLIERS  # 3 or 4 observed
    others = [inliers(view(1), relit_view(seed, degrees=90), transform, rotating) for seed in range(2, 6)]
    assert max(others) <= FEW_INLIERS, others  # 0 to 5 observed


def test_an_affine_fit_allows_a_shear_that_a_similarity_cannot():
    shear = np.float32([[1, 0.35, -0.35 * SIDE / 2], [0, 1, 0]])
    sheared = cv2.warpAffine(view(1), shear, (SIDE, SIDE), borderMode=cv2.BORDER_REFLECT)
    similarity, affine = inliers(view(1), sheared, "similarity"), inliers(view(1), sheared, "affine")
    assert affine >= MANY_INLIERS and affine >= 2 * similarity, (similarity, affine)  # 33 and 105 observed


def test_a_homography_fits_a_perspective_that_an_affine_cannot():
    corners = np.float32([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]])
    keystone = np.float32([[40, 0], [SIDE - 40, 0], [SIDE, SIDE], [0, SIDE]])
    tilted = cv2.warpPerspective(view(1), cv2.getPerspectiveTransform(corners, keystone), (SIDE, SIDE),
                                 borderMode=cv2.BORDER_REFLECT)
    affine, homography = inliers(view(1), tilted, "affine"), inliers(view(1), tilted, "homography")
    assert homography >= MANY_INLIERS and homography >= 1.3 * affine, (affine, homography)  # 59 and 91 observed


def test_too_few_keypoints_or_matches_count_no_inliers():
    xy, descriptors = keypoints(view(1))
    settings = MATCHING
    assert count_inliers(xy[:1], descriptors[:1], xy, descriptors, settings, SIDE) == 0
    assert count_inliers(xy, descriptors, xy[:0], descriptors[:0], settings, SIDE) == 0
    # three matches are fewer than a fit is tried with
    assert count_inliers(xy[:3], descriptors[:3], xy, descriptors, settings, SIDE) == 0
    assert count_inliers(xy, descriptors, xy, descriptors, settings, SIDE) == len(xy)


# --------------------------------------------------------------------------- the photo's extent


def test_content_mask_leaves_out_the_zero_padding_and_a_border_inside_the_photo():
    square = np.zeros((100, 100), np.uint8)
    square[20:80, 10:90] = 7  # the photo, its own darkest pixels zero too
    square[50, 50] = 0
    mask = content_mask(square, border=0.05)  # 5 pixels
    expected = np.zeros((100, 100), np.uint8)
    expected[25:75, 15:85] = 255
    assert mask.dtype == np.uint8 and np.array_equal(mask, expected)
    photo_only = np.zeros((100, 100), np.uint8)
    photo_only[20:80, 10:90] = 255
    assert np.array_equal(content_mask(square, border=0), photo_only)


def test_content_mask_of_a_full_photo_keeps_away_from_the_image_edges():
    mask = content_mask(np.full((40, 40), 9, np.uint8), border=0.1)
    assert np.array_equal(np.flatnonzero(mask.max(axis=1)), np.arange(4, 36))
    assert np.array_equal(np.flatnonzero(mask.max(axis=0)), np.arange(4, 36))


def test_content_mask_is_empty_for_a_blank_square_or_a_photo_thinner_than_its_borders():
    assert not content_mask(np.zeros((50, 50), np.uint8), border=0.02).any()
    thin = np.zeros((50, 50), np.uint8)
    thin[20:24, :] = 200  # four rows, and a 5 pixel border on either side
    assert not content_mask(thin, border=0.1).any()


@pytest.mark.parametrize("side", [SIDE // 2, SIDE, 2 * SIDE])
def test_no_keypoint_lies_in_the_padding_or_within_the_border_of_it(side):
    """A landscape photo preprocessed into a square has padding above and below; the strong
    edge there attracts SIFT, but no keypoint is kept in the padding or `border` from it."""
    photo = view(3, size=side)[: side * 150 // SIDE]  # 150 of 256 rows, at either side
    square = square_image(photo, side)
    scale = SIDE / side
    rows = np.flatnonzero(square.max(axis=1) > 0)
    top, bottom = rows[0] * scale, (rows[-1] + 1) * scale - 1  # the photo's rows at image_size
    margin = round(SETTINGS.border * SIDE)
    # without the mask SIFT finds keypoints on the edge between photo and padding
    resized = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA if side > SIDE else cv2.INTER_CUBIC)
    raw = np.array([k.pt for k in cv2.SIFT_create(nfeatures=200, contrastThreshold=0.02).detect(resized, None)])
    assert ((raw[:, 1] < top + margin) | (raw[:, 1] > bottom - margin)).sum() >= 5
    xy, _ = extract_features(square, SETTINGS)
    assert len(xy) >= 50
    assert xy[:, 1].min() >= top + margin - 1 and xy[:, 1].max() <= bottom - margin + 1
    assert xy[:, 0].min() >= margin - 0.5 and xy[:, 0].max() <= SIDE - 1 - margin + 0.5


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("square", [
    np.zeros((64, 80), np.uint8),
    np.zeros((64, 64), np.float32),
    np.zeros((64, 64, 3), np.uint8),
    np.zeros(64, np.uint8),
], ids=["not square", "float", "colour", "one row"])
def test_extraction_takes_only_square_greyscale_uint8_images(square):
    with pytest.raises(ValueError, match="square greyscale uint8"):
        extract_features(square, SETTINGS)


@pytest.mark.parametrize("side", [128, SIDE, 384])
def test_extraction_keeps_at_most_n_features_on_the_image_size_square(side):
    """Whatever the square's side, positions are pixels of the `image_size` square."""
    settings = replace(SETTINGS, n_features=60, image_size=SIDE)
    xy, descriptors = extract_features(view(4, size=side), settings)
    assert len(xy) == 60  # the pattern has many more
    assert xy.dtype == np.float32 and xy.shape == (len(xy), 2)
    assert descriptors.dtype == np.uint8 and descriptors.shape == (len(xy), 128)
    assert (xy >= 0).all() and (xy < SIDE).all()
    assert descriptors.any(axis=1).all()


def test_the_strongest_keypoints_come_first():
    """Asking for fewer keypoints keeps the first of a longer list, and no position twice
    (upright copies of a point found at two orientations are one point)."""
    many = extract_features(view(1), SETTINGS)
    few = extract_features(view(1), replace(SETTINGS, n_features=10, image_size=SIDE))
    n = len(few[0])
    assert n == 10 and np.array_equal(few[0], many[0][:n])
    # the descriptors of the same points are alike, not identical: OpenCV builds its scale
    # pyramid for the octaves of the keypoints kept (0.05 apart observed, unrelated ones ~0.5)
    assert np.linalg.norm(root_sift(few[1]) - root_sift(many[1][:n]), axis=1).max() < 0.1
    assert len(np.unique(many[0], axis=0)) == len(many[0])


def test_more_keypoints_are_found_than_kept_where_detected_per_kept_is_above_one():
    """The cache then holds n_features times detected_per_kept slots, the strongest first: the
    first n_features of them are what a cache of n_features holds."""
    settings = replace(SETTINGS, n_features=20, image_size=SIDE, detected_per_kept=3)
    assert settings.detected == 60
    found = feature_rows(np.stack([view(2), view(5)]), settings)
    strongest = feature_rows(np.stack([view(2), view(5)]), replace(settings, detected_per_kept=1))
    assert found.shape == (2, 60) and strongest.shape == (2, 20)
    assert not np.isnan(found["xy"][..., 0]).any()
    assert np.array_equal(found["xy"][:, :20], strongest["xy"])


def test_a_photo_keeps_the_keypoints_of_highest_weight_still_strongest_first():
    records = catalogue_records([6, 2, 0], slots=6)
    weights = np.array([[0.1, 0.9, 0.5, 0.9, 0.2, 0.8],
                        [0.3, 0.7, 1.0, 1.0, 1.0, 1.0],  # the unused slots' weights are never kept
                        [1.0] * 6], np.float32)
    kept, kept_weights = keep_on_animal(records, weights, 3)
    assert kept.shape == kept_weights.shape == (3, 3)
    # photo 0: slots 1, 3 (0.9) and 5 (0.8), in the order found; of 0.9 and 0.9 both, not 0.8 before
    assert np.array_equal(kept["xy"][0], records["xy"][0, [1, 3, 5]])
    assert np.array_equal(kept["descriptor"][0], records["descriptor"][0, [1, 3, 5]])
    np.testing.assert_array_equal(kept_weights[0], weights[0, [1, 3, 5]])
    # photo 1: both its keypoints, then an unused slot; photo 2: none
    assert np.array_equal(kept["xy"][1, :2], records["xy"][1, :2]) and np.isnan(kept["xy"][1, 2]).all()
    np.testing.assert_array_equal(kept_weights[1], [*weights[1, :2], 0])
    assert np.isnan(kept["xy"][2]).all() and not kept_weights[2].any()
    # ties go to the stronger; more kept than found: all, unused slots after
    tied, _ = keep_on_animal(records[:1], np.ones((1, 6), np.float32), 2)
    assert np.array_equal(tied["xy"][0], records["xy"][0, :2])
    every, every_weight = keep_on_animal(records, weights, 8)
    assert every.shape == (3, 8) and np.array_equal(every["xy"][0, :6], records["xy"][0]) and np.isnan(
        every["xy"][:, 6:]).all()
    assert not every_weight[:, 6:].any()


def test_kept_keypoints_are_written_chunk_by_chunk_as_one_selection(tmp_path):
    records = catalogue_records([5, 3, 6, 0, 4], slots=6)
    weights = np.random.default_rng(3).random(records.shape).astype(np.float32)
    np.save(tmp_path / "keypoints.npy", records)
    np.save(tmp_path / "weights.npy", weights)
    assert write_kept_keypoints(tmp_path / "keypoints.npy", tmp_path / "weights.npy", 4, tmp_path / "kept.npy",
                                tmp_path / "kept_weights.npy", chunk_size=2) == 5
    expected, expected_weights = keep_on_animal(records, weights, 4)
    written = read_keypoint_cache(str(tmp_path / "kept.npy"))
    assert same_records(written, expected)
    np.testing.assert_array_equal(np.load(tmp_path / "kept_weights.npy"), expected_weights)
    assert {path.name for path in tmp_path.iterdir()} == {"keypoints.npy", "weights.npy", "kept.npy",
                                                          "kept_weights.npy"}  # no temporary left
    np.save(tmp_path / "short.npy", weights[:, :5])
    with pytest.raises(ValueError, match="another keypoint cache"):
        write_kept_keypoints(tmp_path / "keypoints.npy", tmp_path / "short.npy", 4, tmp_path / "a.npy",
                             tmp_path / "b.npy")


def test_the_padding_edge_does_not_use_up_the_keypoint_budget():
    """OpenCV keeps its `nfeatures` strongest before it applies the mask: asked for them
    directly, a padded photo lost a quarter of its keypoints to the masked-out edge."""
    square = square_image(view(3)[:150], SIDE)
    for n_features in (50, 150):
        xy, _ = extract_features(square, replace(SETTINGS, n_features=n_features, image_size=SIDE))
        assert len(xy) == n_features and len(np.unique(xy, axis=0)) == n_features


def test_a_blank_square_has_no_keypoints():
    for square in (np.zeros((SIDE, SIDE), np.uint8), np.full((SIDE, SIDE), 128, np.uint8)):
        xy, descriptors = extract_features(square, SETTINGS)
        assert xy.shape == (0, 2) and xy.dtype == np.float32
        assert descriptors.shape == (0, 128) and descriptors.dtype == np.uint8


@pytest.mark.parametrize("bad", [dict(n_features=0), dict(image_size=31), dict(border=0.5), dict(border=-0.01),
                                 dict(contrast_threshold=0), dict(detected_per_kept=0)], ids=str)
def test_feature_settings_reject_bad_values(bad):
    with pytest.raises(ValueError):
        replace(SETTINGS, **bad)


@pytest.mark.parametrize("bad", [dict(transform="projective"), dict(neighbours=0), dict(shortlist=0),
                                 dict(photos_per_individual=0), dict(nprobe=0), dict(ransac_iterations=0),
                                 dict(ratio=0), dict(ratio=1.01), dict(reprojection_error=0),
                                 dict(guided_ratio=0), dict(guided_ratio=1.01)], ids=str)
def test_match_settings_reject_bad_values(bad):
    with pytest.raises(ValueError):
        replace(MATCHING, **bad)


def test_settings_accept_their_limits():
    replace(SETTINGS, n_features=1, image_size=32, border=0, contrast_threshold=1e-6)
    for transform in TRANSFORMS:
        replace(MATCHING, transform=transform, ratio=1, guided_ratio=1, neighbours=1, shortlist=1,
                photos_per_individual=1, nprobe=1, ransac_iterations=1)


# --------------------------------------------------------------------------- the cache

CACHE_SETTINGS = replace(SETTINGS, n_features=40, image_size=SIDE)


@pytest.fixture
def squares_path(tmp_path):
    """A preprocess cache of eight squares, the last one blank."""
    squares = np.stack([view(seed, degrees=seed) for seed in range(10, 17)] + [np.zeros((SIDE, SIDE), np.uint8)])
    path = tmp_path / "squares.npy"
    np.save(path, squares)
    return path


def same_records(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.dtype == b.dtype and np.array_equal(a["xy"], b["xy"], equal_nan=True)
            and np.array_equal(a["descriptor"], b["descriptor"]))


def test_cache_holds_each_squares_keypoints_with_unused_slots_empty(tmp_path, squares_path):
    out = tmp_path / "features.npy"
    build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    cache = read_keypoint_cache(out)
    squares = np.load(squares_path)
    assert cache.shape == (8, 40) and cache.dtype == feature_dtype()
    for row, square in zip(cache, squares):
        xy, descriptors = unpack(row)
        expected_xy, expected_descriptors = extract_features(square, CACHE_SETTINGS)
        assert np.array_equal(xy, expected_xy) and np.array_equal(descriptors, expected_descriptors)
        unused = row[len(xy):]
        assert np.isnan(unused["xy"]).all() and not unused["descriptor"].any()
    assert 0 < len(unpack(cache[0])[0]) and len(unpack(cache[-1])[0]) == 0
    assert np.isnan(cache[-1]["xy"]).all()
    assert not list(tmp_path.glob("*.partial.*"))


def test_cache_built_by_two_workers_equals_one_built_by_one(tmp_path, squares_path):
    build_keypoint_cache(squares_path, tmp_path / "one.npy", CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    build_keypoint_cache(squares_path, tmp_path / "two.npy", CACHE_SETTINGS, n_jobs=2, chunk_size=3)
    assert same_records(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"))



@pytest.mark.parametrize("chunks", [1, 3, 4])
def test_a_cache_made_in_chunks_of_photos_and_joined_is_the_same_bytes_as_one_made_whole(tmp_path, squares_path,
                                                                                          chunks):
    build_keypoint_cache(squares_path, tmp_path / "whole.npy", CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    parts = []
    for chunk in range(1, chunks + 1):
        # 8 squares in blocks of 3: chunks of 3, 3 and 2, or with 4 chunks one of none
        rows = chunk_rows(8, chunk, chunks, 3)
        parts.append(tmp_path / f"{chunk}-of-{chunks}.npy")
        build_keypoint_cache(squares_path, parts[-1], CACHE_SETTINGS, rows=rows, n_jobs=1, chunk_size=3)
        assert len(np.load(parts[-1])) == len(rows)
    assert [len(np.load(part)) for part in parts] == {1: [8], 3: [3, 3, 2], 4: [0, 3, 3, 2]}[chunks]
    assert join_keypoint_caches(parts, tmp_path / "joined.npy") == 8
    assert (tmp_path / "joined.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()


def test_joining_keypoint_caches_of_different_slots_names_them(tmp_path, squares_path):
    build_keypoint_cache(squares_path, tmp_path / "a.npy", CACHE_SETTINGS, rows=range(0, 3), n_jobs=1, chunk_size=3)
    build_keypoint_cache(squares_path, tmp_path / "b.npy", replace(CACHE_SETTINGS, n_features=7), rows=range(3, 8),
                         n_jobs=1, chunk_size=3)
    with pytest.raises(ValueError, match="b.npy were made with different n_features"):
        join_keypoint_caches([tmp_path / "a.npy", tmp_path / "b.npy"], tmp_path / "joined.npy")
    assert not (tmp_path / "joined.npy").exists()
    with pytest.raises(ValueError, match="rows 6 to 9 of a cache of 8 squares"):
        build_keypoint_cache(squares_path, tmp_path / "c.npy", CACHE_SETTINGS, rows=range(6, 9), n_jobs=1,
                             chunk_size=3)

def stop_after_first_chunk(done, total):
    if done:  # the first call, with nothing done, only says where the job starts
        raise KeyboardInterrupt  # as if the job were killed once a chunk is recorded


def test_interrupted_cache_resumes_extracting_only_the_unfinished_chunks(tmp_path, squares_path, monkeypatch):
    out = tmp_path / "features.npy"
    with pytest.raises(KeyboardInterrupt):
        build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3, progress=stop_after_first_chunk)
    assert not out.exists()
    assert json.loads((tmp_path / "features.partial.json").read_text())["done"] == [0]

    extracted = []
    real = local_keypoints.extract_features

    def counting(square, settings):
        extracted.append(np.array(square))
        return real(square, settings)

    # n_jobs=1 runs the chunks in this process, where the patch applies
    monkeypatch.setattr(local_keypoints, "extract_features", counting)
    reports = []
    build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3,
                        progress=lambda done, total: reports.append((done, total)))
    squares = np.load(squares_path)
    assert len(extracted) == 5 and all(np.array_equal(a, b) for a, b in zip(extracted, squares[3:]))
    assert reports == [(3, 8), (6, 8), (8, 8)]
    monkeypatch.undo()
    reference = tmp_path / "reference.npy"
    build_keypoint_cache(squares_path, reference, CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    assert same_records(np.load(out), np.load(reference))
    assert not list(tmp_path.glob("*.partial.*"))


def test_leftover_partial_cache_from_other_settings_is_not_reused(tmp_path, squares_path):
    out = tmp_path / "features.npy"
    with pytest.raises(KeyboardInterrupt):
        build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3, progress=stop_after_first_chunk)
    fewer = replace(SETTINGS, n_features=30, image_size=SIDE)
    build_keypoint_cache(squares_path, out, fewer, n_jobs=1, chunk_size=3)
    cache = np.load(out)
    assert cache.shape == (8, 30)
    assert same_records(cache, feature_rows(np.load(squares_path), fewer))


# ----------------------------------------------------- keypoints of the original photo (max_side)

def wide_photo(seed: int = 101, width: int = 640, height: int = 320) -> np.ndarray:
    """A landscape photo of a pattern: the middle of it, resized to `width` x `height`."""
    return cv2.resize(pattern(seed)[96:416], (width, height), interpolation=cv2.INTER_AREA)


def test_keypoints_of_the_original_photo_lie_where_the_square_puts_them(tmp_path):
    """Found on the photo itself at max_side, positions are in the frame of the square that
    preprocessing makes of it: the same points as on that square, where the square shows the
    photo at the same scale."""
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), wide_photo())
    settings = replace(SETTINGS, n_features=300, max_side=320)
    photo = photo_at_max_side(path, 320)
    assert photo.shape == (160, 320)  # shrunk to the long side, never enlarged
    assert photo_at_max_side(path, 1000).shape == (320, 640)
    xy, descriptors = extract_photo_features(photo, settings)
    assert len(xy) > 50 and descriptors.dtype == np.uint8
    # the photo is centred in a 320 square: 80 rows of padding above it
    assert xy[:, 1].min() >= 80 and xy[:, 1].max() <= 240
    square_xy, _ = extract_features(square_image(read_gray(path.read_bytes()), 320), replace(settings, image_size=320))
    nearest = np.linalg.norm(xy[:, None] - square_xy[None], axis=2).min(axis=1)
    assert np.mean(nearest < 1.5) > 0.8 and np.median(nearest) < 0.5


def test_max_side_keypoints_come_from_the_photos_own_resolution(tmp_path):
    """A fine pattern (spots a few pixels across in a 1,600-pixel photo) is lost on a 224 square
    made from an 896 one, and found on the photo at 1,024 pixels; positions stay in one frame."""
    rng = np.random.default_rng(0)
    photo = np.full((1600, 1600), 120, np.uint8)
    for x, y in rng.integers(20, 1580, (4000, 2)):
        cv2.circle(photo, (int(x), int(y)), int(rng.integers(2, 5)), int(rng.integers(0, 256)), -1)
    path = tmp_path / "fine.png"
    cv2.imwrite(str(path), photo)
    settings = replace(SETTINGS, n_features=5000, image_size=224, max_side=1024)
    at_square = extract_features(square_image(read_gray(path.read_bytes()), 896), settings)[0]
    at_max_side = extract_photo_features(photo_at_max_side(path, 1024), settings)[0]
    assert len(at_max_side) > 4 * len(at_square)
    assert at_max_side.min() >= 0 and at_max_side.max() <= 1024


def test_a_photo_keypoint_cache_holds_each_photos_keypoints_and_its_settings_key(tmp_path):
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"p{seed}.jpg")
        cv2.imwrite(str(paths[-1]), wide_photo(101 + seed, 1280, 640), [cv2.IMWRITE_JPEG_QUALITY, 95])
    sizes = [(1280, 640)] * 3
    settings = replace(SETTINGS, n_features=100, max_side=320)
    out = tmp_path / "keypoints.npy"
    build_photo_keypoint_cache(paths, str(out), settings, sizes=sizes, n_jobs=1, chunk_size=2)
    cache = read_keypoint_cache(str(out))
    assert same_records(cache, photo_feature_rows(paths, sizes, settings))
    # decoded at a quarter of its size by the JPEG decoder, as the manifest's size allows
    assert (~np.isnan(cache["xy"][:, :, 0])).sum(axis=1).min() > 50
    # another max_side is another cache: a partial one of the first is not reused
    with pytest.raises(KeyboardInterrupt):
        build_photo_keypoint_cache(paths, str(tmp_path / "other.npy"), settings, sizes=sizes, n_jobs=1,
                                   chunk_size=2, progress=stop_after_first_chunk)
    larger = replace(settings, max_side=640)
    build_photo_keypoint_cache(paths, str(tmp_path / "other.npy"), larger, sizes=sizes, n_jobs=1, chunk_size=2)
    assert same_records(read_keypoint_cache(str(tmp_path / "other.npy")), photo_feature_rows(paths, sizes, larger))
    with pytest.raises(ValueError, match="max_side"):
        build_photo_keypoint_cache(paths, str(out), replace(settings, max_side=None), n_jobs=1, chunk_size=2)


def test_leftover_partial_cache_of_squares_since_rebuilt_is_not_reused(tmp_path, squares_path):
    # A job killed after its first chunk, then the squares rebuilt from other photos: the same
    # path, the same number of rows. Resuming would keep the first chunk's keypoints of photos
    # that are no longer there.
    out = tmp_path / "features.npy"
    with pytest.raises(KeyboardInterrupt):
        build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3, progress=stop_after_first_chunk)
    rebuilt = np.stack([view(seed + 20) for seed in range(8)])
    np.save(squares_path, rebuilt)
    build_keypoint_cache(squares_path, out, CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    assert same_records(np.load(out), feature_rows(rebuilt, CACHE_SETTINGS))


def test_cache_rejects_what_is_not_preprocessed_squares(tmp_path):
    path = tmp_path / "squares.npy"
    np.save(path, np.zeros((2, 32, 40), np.uint8))
    with pytest.raises(ValueError, match="preprocessed squares"):
        build_keypoint_cache(path, tmp_path / "features.npy", CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    np.save(path, np.zeros((2, 32, 32), np.float32))
    with pytest.raises(ValueError, match="preprocessed squares"):
        build_keypoint_cache(path, tmp_path / "features.npy", CACHE_SETTINGS, n_jobs=1, chunk_size=3)
    np.save(path, np.zeros((2, 40), np.uint8))
    with pytest.raises(ValueError, match="keypoint records"):
        read_keypoint_cache(path)


# --------------------------------------------------------------------------- voting and ranking


def catalogue_records(keypoint_counts, slots: int = 3, seed: int = 0) -> np.ndarray:
    """Hand-made cache rows: photo i has `keypoint_counts[i]` keypoints with random descriptors."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((len(keypoint_counts), slots), feature_dtype())
    rows["xy"] = np.nan
    for row, count in zip(rows, keypoint_counts):
        row["xy"][:count] = rng.uniform(0, 64, (count, 2))
        row["descriptor"][:count] = rng.integers(1, 256, (count, 128))
    return rows


def test_a_descriptor_votes_once_per_key_with_its_best_weight():
    descriptor = np.array([0, 0, 0, 1, 1, 2])
    key = np.array([0, 0, 1, 0, 1, 1])
    weight = np.array([0.2, 0.5, 0.1, 0.3, 0.4, 0.7])
    # key 0: 0.5 (descriptor 0's best) + 0.3; key 1: 0.1 + 0.4 + 0.7; key 2: nobody
    np.testing.assert_allclose(_best_per_key(descriptor, key, weight, 3), [0.8, 1.2, 0.0])
    assert _best_per_key(descriptor[:0], key[:0], weight[:0], 2).tolist() == [0.0, 0.0]


def test_lnbnn_votes_by_how_much_closer_a_neighbour_is_than_the_next():
    # catalogue rows: b (2 keypoints), a, new_whale, c, d, a (2 keypoints); new_whale is left out,
    # so the photos are rows 0, 1, 3, 4, 5 and the descriptors belong to photos 0 0 1 2 3 4 4
    ids = ["b", "a", NEW_WHALE, "c", "d", "a"]
    catalogue = LocalCatalogue(catalogue_records([2, 1, 1, 1, 1, 2]), ids, 64, MATCHING)
    assert len(catalogue) == 5 and catalogue.individuals.tolist() == ["a", "b", "c", "d"]
    assert catalogue.photos.tolist() == [0, 1, 3, 4, 5]
    assert catalogue.photo_of_descriptor.tolist() == [0, 0, 1, 2, 3, 4, 4]
    # three query descriptors, k = 2 neighbours and the third as the reference; squared distances
    distances = np.array([[1.0, 4.0, 9.0],         # 1, 2 | 3: weights 2 and 1, both photo 0 (b)
                          [0.25, 6.25, 16.0],      # 0.5, 2.5 | 4: 3.5 to photo 4 (a), 1.5 to photo 1 (a)
                          [-1e-7, 1.0, 1.0]])      # 0, 1 | 1: 1 to photo 2 (c); no second neighbour
    neighbours = np.array([[0, 1, 5], [5, 2, 6], [3, -1, 4]])
    individual_votes, photo_votes = catalogue.votes(distances, neighbours)
    np.testing.assert_allclose(individual_votes, [3.5, 2.0, 1.0, 0.0])  # a, b, c, d
    np.testing.assert_allclose(photo_votes, [2.0, 1.5, 1.0, 0.0, 3.5])


def test_catalogue_needs_four_known_individuals_and_some_keypoints():
    ids = ["a", "b", "c", NEW_WHALE, NEW_WHALE]
    with pytest.raises(ValueError, match="at least 4"):
        LocalCatalogue(catalogue_records([1] * 5), ids, 64, MATCHING)
    with pytest.raises(ValueError, match="no catalogue photo has keypoints"):
        LocalCatalogue(catalogue_records([0] * 4), ["a", "b", "c", "d"], 64, MATCHING)
    with pytest.raises(ValueError, match="3 catalogue ids for 4"):
        LocalCatalogue(catalogue_records([1] * 4), ["a", "b", "c"], 64, MATCHING)


INDIVIDUALS = [f"w{seed}" for seed in range(101, 107)]
UNKNOWN = 200


def shortlist_catalogue_squares() -> list[np.ndarray]:
    """Six individuals with two photos each, and a new_whale photo of a seventh pattern."""
    seeds = range(101, 107)
    catalogue_squares = [view(s, degrees=-5) for s in seeds] + [view(s, 8, 0.9, (10, 5), 0.9, 10, 1.1) for s in seeds]
    return catalogue_squares + [view(UNKNOWN, degrees=4)]


@pytest.fixture(scope="module")
def shortlists():
    """The `shortlist_catalogue_squares`; the queries are another photo of each of the six
    individuals, one of the seventh and one blank square."""
    seeds = range(101, 107)
    ids = INDIVIDUALS * 2 + [NEW_WHALE]
    settings = replace(MATCHING, shortlist=4, photos_per_individual=2)
    catalogue = LocalCatalogue(feature_rows(np.stack(shortlist_catalogue_squares()), SETTINGS), ids, SIDE, settings)
    queries = [view(s, 3, 1.1, (-8, 6), 1.15, -10, 0.85) for s in [*seeds, UNKNOWN]]
    query_features = feature_rows(np.stack(queries + [np.zeros((SIDE, SIDE), np.uint8)]), SETTINGS)
    pairs = match_queries(catalogue, query_features, n_jobs=1)
    return catalogue, query_features, pairs, individual_scores(pairs, "inliers")



def test_the_catalogue_makes_its_descriptors_batch_by_batch_in_the_order_of_its_photos(monkeypatch):
    records = catalogue_records([3, 0, 2, 1, 3], slots=3)
    catalogue = LocalCatalogue(records, ["a", "b", "c", "d", "e"], 64, MATCHING)
    whole = np.concatenate([catalogue.photo_keypoints(photo)[1] for photo in range(len(catalogue))])
    assert whole.shape == (9, 128) and catalogue.index.ntotal == 9
    monkeypatch.setattr(local_catalogue, "ADD_BATCH", 2)  # photos 0-1, 2-3, 4
    descriptors = local_catalogue._Descriptors(catalogue.features, np.array([3, 0, 2, 1, 3]))
    assert [first for first, _ in descriptors.batches()] == [0, 3, 6]
    positions = np.array([8, 0, 4, 3, 6])
    np.testing.assert_array_equal(descriptors.take(positions), whole[positions])
    np.testing.assert_array_equal(np.concatenate([batch for _, batch in descriptors.batches()]), whole)


@pytest.mark.parametrize("compress_above, code_size", [(None, 4 * 128), (10**9, 4 * 128), (0, 128)])
def test_a_catalogue_above_compress_above_descriptors_holds_them_in_a_quarter_of_the_bytes_and_still_finds_each_query(
        monkeypatch, compress_above, code_size):
    import faiss

    # inverted lists for the dozen photos' thousand-odd descriptors, as for a large catalogue
    monkeypatch.setattr(local_catalogue, "EXACT_SEARCH_BELOW", 100)
    settings = replace(MATCHING, shortlist=4, photos_per_individual=2, compress_above=compress_above)
    catalogue = LocalCatalogue(feature_rows(np.stack(shortlist_catalogue_squares()), SETTINGS),
                               INDIVIDUALS * 2 + [NEW_WHALE], SIDE, settings)
    lists = faiss.extract_index_ivf(catalogue.index)
    assert lists.code_size == code_size and lists.ntotal == len(catalogue.photo_of_descriptor)
    queries = [view(s, 3, 1.1, (-8, 6), 1.15, -10, 0.85) for s in range(101, 107)]
    table = individual_scores(match_queries(catalogue, feature_rows(np.stack(queries), SETTINGS)), "inliers")
    # the votes come from approximate distances once compressed, the inliers from the exact descriptors
    firsts = table[table["rank"] == 0].sort_values("query")
    assert firsts["id"].tolist() == INDIVIDUALS
    assert (firsts["inliers"] >= MANY_INLIERS).all()

def test_each_query_ranks_its_own_individual_first_with_the_most_votes_and_inliers(shortlists):
    _, _, _, table = shortlists
    assert list(table.columns) == ["query", "rank", "id", "votes", "inliers", "score"]
    assert (table["score"] == table["inliers"]).all()
    for query, individual in enumerate(INDIVIDUALS):
        rows = table[table["query"] == query]
        assert rows["rank"].tolist() == [0, 1, 2, 3]  # the shortlist of four
        assert rows["id"].iloc[0] == individual
        # voting shortlisted it first too, by far (45 to 52 against at most 4 observed)
        assert rows["votes"].iloc[0] >= 5 * rows["votes"].iloc[1:].max()
        assert rows["inliers"].iloc[0] >= MANY_INLIERS and rows["inliers"].iloc[1:].max() <= FEW_INLIERS
        assert (np.diff(rows["inliers"].to_numpy()) <= 0).all()


def test_an_unknown_individual_matches_no_one_and_new_whale_photos_are_left_out(shortlists):
    """The unknown query's own pattern is in the catalogue only as a new_whale photo."""
    catalogue, _, _, table = shortlists
    assert NEW_WHALE not in catalogue.individuals and NEW_WHALE not in set(table["id"])
    unknown = table[table["query"] == len(INDIVIDUALS)]
    assert len(unknown) == 4 and unknown["inliers"].max() <= FEW_INLIERS


def test_a_query_without_keypoints_gets_no_shortlist(shortlists):
    _, query_features, _, table = shortlists
    assert sorted(set(table["query"])) == list(range(len(query_features) - 1))


def test_verification_on_two_threads_gives_the_same_table(shortlists):
    catalogue, query_features, pairs, _ = shortlists
    pd.testing.assert_frame_equal(match_queries(catalogue, query_features, n_jobs=2), pairs)


def test_pairs_checked_before_are_taken_as_they_were_measured_and_the_others_checked_afresh(shortlists):
    """As self-training matches the queries again: the pairs it checked before come back the same,
    whether checked again or not, and a pair given is taken as it is, not checked again."""
    catalogue, query_features, pairs, _ = shortlists
    queries = np.arange(len(query_features))
    every_photo = {photo: photo for photo in range(len(catalogue))}
    # half of the pairs given: those are taken, the others checked again
    half = checked_before(pairs.iloc[::2], queries, every_photo)
    assert sum(map(len, half)) == (len(pairs) + 1) // 2
    pd.testing.assert_frame_equal(match_queries(catalogue, query_features, checked_before=half), pairs,
                                  check_exact=True)
    given = checked_before(pairs, queries, every_photo)
    first = pairs.iloc[0]
    given[first["query"]][first["photo"]] = (1, 999, *given[first["query"]][first["photo"]][2:])
    again = match_queries(catalogue, query_features, checked_before=given)
    assert again.loc[0, "inliers"] == 999 and again.loc[0, "matches"] == 1
    pd.testing.assert_frame_equal(again.drop(columns=["matches", "inliers", "inlier_share"]).iloc[1:],
                                  pairs.drop(columns=["matches", "inliers", "inlier_share"]).iloc[1:],
                                  check_exact=True)
    with pytest.raises(ValueError, match="pairs checked before of 2 queries for 8"):
        match_queries(catalogue, query_features, checked_before=half[:2])


def test_a_query_the_catalogue_holds_is_never_checked_against_its_own_photo():
    """As self-training and the new individuals' proposal match the test photos they added: w101
    has a second photo to be found by; w106's only photo is the query's own, so it is not
    shortlisted at all."""
    rows = feature_rows(np.stack(shortlist_catalogue_squares()), SETTINGS)
    ids = INDIVIDUALS + INDIVIDUALS[:5] + [NEW_WHALE, NEW_WHALE]
    catalogue = LocalCatalogue(rows, ids, SIDE, replace(MATCHING, shortlist=4, photos_per_individual=2))
    position = np.full(len(rows), -1)
    position[catalogue.photos] = np.arange(len(catalogue))
    queries = rows[[0, 5]]
    alone = individual_scores(match_queries(catalogue, queries), "inliers").query("rank == 0")
    # against itself each query is identical: nothing else comes near
    assert alone["id"].tolist() == ["w101", "w106"] and (alone["inliers"] >= 2 * MANY_INLIERS).all()
    pairs = match_queries(catalogue, queries, own_photos=position[[0, 5]])
    assert position[0] not in set(pairs.loc[pairs["query"] == 0, "photo"])
    assert "w106" not in set(pairs.loc[pairs["query"] == 1, "id"])
    first = individual_scores(pairs, "inliers").query("rank == 0").set_index("query")
    assert first.loc[0, "id"] == "w101" and first.loc[0, "inliers"] >= MANY_INLIERS
    assert first.loc[1, "inliers"] <= FEW_INLIERS
    with pytest.raises(ValueError, match="1 own photos for 2 queries"):
        match_queries(catalogue, queries, own_photos=[0])


def test_shortlists_become_candidates_and_answers(shortlists):
    _, query_features, _, table = shortlists
    candidates = shortlist_candidates(table, len(query_features), fallback=INDIVIDUALS)
    answers = final_answers(candidates, threshold=20)
    for query, individual in enumerate(INDIVIDUALS):
        assert answers[query][0] == individual and answers[query][1] == NEW_WHALE
    assert answers[len(INDIVIDUALS)][0] == NEW_WHALE
    assert answers[-1] == [NEW_WHALE, *INDIVIDUALS[:4]]


def test_shortlist_candidates_from_a_hand_made_table():
    table = pd.DataFrame(
        [(1, 1, "a", 2.0, 4), (0, 0, "a", 9.0, 30), (0, 1, "b", 7.0, 8), (0, 2, "c", 8.0, 5),
         (0, 3, "d", 1.0, 3), (0, 4, "e", 0.5, 1), (1, 0, "c", 5.0, 12)],
        columns=["query", "rank", "id", "votes", "inliers"]).assign(score=lambda t: t["inliers"].astype(float))
    candidates = shortlist_candidates(table, 3, fallback=["a", "b", "c", "d", "e"])
    # query 0: its best four by rank; query 1: two, then the fallback's first not already
    # there; query 2, not in the table: the fallback alone
    assert candidates.ids == [["a", "b", "c", "d"], ["c", "a", "b", "d"], ["a", "b", "c", "d"]]
    assert candidates.top.tolist() == [[30, 8, 5, 3], [12, 4, -1, -1], [-1, -1, -1, -1]]
    assert candidates.own.tolist() == [-np.inf] * 3
    assert final_answers(candidates, 6) == [["a", "b", NEW_WHALE, "c", "d"], ["c", NEW_WHALE, "a", "b", "d"],
                                            [NEW_WHALE, "a", "b", "c", "d"]]
    assert final_answers(candidates, 0) == [["a", "b", "c", "d", NEW_WHALE], ["c", "a", NEW_WHALE, "b", "d"],
                                            [NEW_WHALE, "a", "b", "c", "d"]]
    with pytest.raises(ValueError, match="fewer than 4"):
        shortlist_candidates(table, 3, fallback=["a", "b"])


# --------------------------------------------------------------------------- RootSIFT


def test_root_sift_is_the_square_root_of_the_l1_normalised_descriptor():
    rng = np.random.default_rng(5)
    sift = rng.integers(0, 256, (20, 128)).astype(np.uint8)
    sift[3] = 0
    sift[7] = 0
    sift[7, 11] = 40  # one bin only
    root = root_sift(sift)
    assert root.dtype == np.float32 and root.shape == (20, 128)
    lengths = np.linalg.norm(root, axis=1)
    np.testing.assert_allclose(np.delete(lengths, 3), 1.0, rtol=1e-5)
    assert not root[3].any()
    assert root[7, 11] == 1.0 and np.count_nonzero(root[7]) == 1
    x = sift.astype(np.float64)
    total = x.sum(axis=1, keepdims=True)
    expected = np.sqrt(np.divide(x, total, out=np.zeros_like(x), where=total > 0))
    np.testing.assert_allclose(root, expected, rtol=1e-6, atol=1e-7)


def test_ratio_matches_agree_with_opencvs_brute_force_matcher():
    """The matrix-product ratio test gives OpenCV's BFMatcher matches, photo by photo, including
    photos with too few descriptors to compare (no matches); the two may differ only where the
    distances sit on the ratio's boundary, within float32 rounding."""
    rng = np.random.default_rng(5)
    query = root_sift(rng.integers(0, 60, (80, 128)))
    photos = [root_sift(rng.integers(0, 60, (n, 128))) for n in (50, 1, 0, 120)]
    near = query[:30] + 0.01 * rng.random((30, 128), dtype=np.float32)
    photos[3][:30] = near / np.linalg.norm(near, axis=1, keepdims=True)  # true matches, of unit length as RootSIFT
    for ratio in (0.8, 0.95):
        found = ratio_matches(query, photos, ratio)
        for photo, (rows, matched, ratios) in zip(photos, found):
            expected = []
            if len(photo) >= 2:
                pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query, photo, k=2)
                expected = [(p[0].queryIdx, p[0].trainIdx) for p in pairs if p[0].distance < ratio * p[1].distance]
            differ = set(zip(rows.tolist(), matched.tolist())) ^ set(expected)
            if len(rows):  # the ratio reported is the nearest's distance over the second's
                second = np.sort(np.linalg.norm(photo[None] - query[rows, None], axis=2), axis=1)[:, :2]
                np.testing.assert_allclose(ratios, second[:, 0] / second[:, 1], rtol=1e-3)
                assert (ratios < ratio).all()
            for row, _ in differ:
                exact = np.sort(np.linalg.norm(photo.astype(np.float64) - query[row], axis=1))
                assert abs(exact[0] - ratio * exact[1]) < 1e-4
            assert len(differ) <= 1
    assert len(ratio_matches(query, photos, 0.8)[3][0]) >= 30


def test_guided_matching_finds_the_planted_correspondences_a_plain_ratio_test_misses():
    """40 query keypoints have a true counterpart in the photo where a similarity puts them, and
    beside it, 3 pixels away, a near twin (the same spot at a nearby scale, say): Lowe's ratio
    test compares each true match with its own twin and rejects most. Along the transform, the
    twin is inside the window and the rest of the photo far, so guided matching finds them;
    query keypoints with no counterpart find nothing, and a wrong transform finds little."""
    rng = np.random.default_rng(11)
    planted, query_only, photo_only = 40, 30, 80
    query = root_sift(rng.integers(0, 60, (planted + query_only, 128)))
    query_xy = rng.uniform(20, 200, (len(query), 2))
    matrix = cv2.getRotationMatrix2D((110, 110), 10, 1.1)
    landed = query_xy[:planted] @ matrix[:, :2].T + matrix[:, 2]

    def noisy(descriptors, sigma):
        moved = np.abs(descriptors + rng.normal(0, sigma, descriptors.shape))
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)

    angle = rng.uniform(0, 2 * np.pi, planted)
    photo = np.concatenate([noisy(query[:planted], 0.009), noisy(query[:planted], 0.010),
                            root_sift(rng.integers(0, 60, (photo_only, 128)))])
    photo_xy = np.concatenate([landed, landed + 3 * np.c_[np.cos(angle), np.sin(angle)],
                               rng.uniform(0, 220, (photo_only, 2))])
    plain, _, _ = ratio_matches(query, [photo], MATCHING.ratio)[0]
    assert len(plain) <= planted // 4

    query_rows, photo_rows = guided_matches(query_xy, query, photo_xy, photo, matrix, 4.4, 0.9)
    assert query_rows.tolist() == sorted(query_rows) and len(set(photo_rows)) == len(photo_rows)
    assert len(query_rows) >= 0.9 * planted and (query_rows < planted).all()
    # each to its own counterpart or that one's twin, mostly the counterpart (nearer in descriptor)
    assert np.isin(photo_rows - query_rows, [0, planted]).all()
    assert (photo_rows == query_rows).mean() >= 0.8
    # a homography of the same transform finds the same; a transform 40 pixels off, little; none, nothing
    homography = np.vstack([matrix, [0, 0, 1]])
    found = guided_matches(query_xy, query, photo_xy, photo, homography, 4.4, 0.9)
    assert np.array_equal(found[0], query_rows) and np.array_equal(found[1], photo_rows)
    shifted = matrix + [[0, 0, 40], [0, 0, 0]]
    assert len(guided_matches(query_xy, query, photo_xy, photo, shifted, 4.4, 0.9)[0]) <= 3
    assert len(guided_matches(query_xy, query, photo_xy, photo, None, 4.4, 0.9)[0]) == 0


# --------------------------------------------------------------------------- shortlist and pair statistics


def test_a_shortlist_by_photo_does_not_let_many_photos_outvote_one():
    """b has five photos, each a poor likeness that some query descriptors vote for; a has one,
    a good likeness. Summed over all its photos, b's votes outnumber a's; its best photo's do not."""
    ids = ["a", "b", "b", "b", "b", "b", "c", "d"]
    catalogue = LocalCatalogue(catalogue_records([1] * 8), ids, 64, MATCHING)
    photo_votes = np.array([5.0, 2, 2, 2, 2, 2, 1, 0.5])
    individual_votes = np.array([5.0, 8.0, 1.0, 0.5])  # a, b (its photos' votes, each descriptor once), c, d
    by_individual = replace(MATCHING, shortlist=1, shortlist_by="individual")
    by_photo = replace(MATCHING, shortlist=1, shortlist_by="photo")
    assert catalogue.individuals[LocalCatalogue(catalogue_records([1] * 8), ids, 64, by_individual).shortlist(
        individual_votes, photo_votes)].tolist() == ["b"]
    assert catalogue.individuals[LocalCatalogue(catalogue_records([1] * 8), ids, 64, by_photo).shortlist(
        individual_votes, photo_votes)].tolist() == ["a"]


def test_each_verified_pair_records_the_statistics_a_verifier_reads(shortlists):
    catalogue, _, pairs, _ = shortlists
    assert set(pairs.columns) >= {"query", "id", "photo", "individual", *FEATURES} - {"abs_rotation"}
    own = pairs["query"].map(dict(enumerate(INDIVIDUALS)))
    right = pairs[(pairs["query"] < len(INDIVIDUALS)) & (pairs["id"] == own)]
    wrong = pairs[pairs["query"] < len(INDIVIDUALS)].drop(right.index)
    # two photos of each individual verified: both of the right one, with many inliers
    assert len(right) == 2 * len(INDIVIDUALS) and (right["inliers"] >= MANY_INLIERS).all()
    # the query is turned 3 and 8 degrees from its individual's two photos, scaled 1.1 and 0.9:
    # the fitted similarity undoes that, about
    assert right["scale"].between(0.7, 1.4).all() and right["rotation"].abs().between(0, 15).all()
    # right inliers cover much of the square, are distinctive, and lead their query by far
    assert right["query_cover"].min() > 0.1 and right["photo_cover"].min() > 0.1
    assert right["ratio_q50"].max() < wrong.loc[wrong["inliers"] > 0, "ratio_q50"].min()
    assert (right["inlier_gap"] > 0).all() and (wrong["inlier_gap"] < 0).all()
    assert (right["inlier_share"] > wrong["inlier_share"].max()).all()
    assert (right["individual_vote_share"] == 1).all()
    # a wrong photo without a fit has no transform, and its ratios say "none"
    unfitted = wrong[wrong["scale"].isna()]
    assert (unfitted["inliers"] == 0).all() and (unfitted["ratio_q50"] == 1).all()
    assert (pairs["query_keypoints"] > 0).all() and (pairs["photo_keypoints"] > 0).all()


def test_the_inliers_drawn_for_a_pair_are_those_verification_counted(shortlists):
    catalogue, query_features, pairs, _ = shortlists
    records = feature_rows(np.stack(shortlist_catalogue_squares()), SETTINGS)
    for pair in pairs.itertuples():
        query_xy, photo_xy = inlier_matches(query_features[pair.query], records[catalogue.photos[pair.photo]],
                                            catalogue.settings, SIDE)
        assert len(query_xy) == len(photo_xy) == pair.inliers
    # a right pair's inliers lie where the two views put the same spot of the pattern
    right = pairs[(pairs["query"] == 0) & (pairs["id"] == INDIVIDUALS[0])]
    for photo in right["photo"]:
        row = catalogue.photos[photo]
        query_xy, photo_xy = inlier_matches(query_features[0], records[row], catalogue.settings, SIDE)
        # rows 0-5: each individual's first view, 6-11: its second (shortlist_catalogue_squares)
        seen = view_matrix(-5) if row < 6 else view_matrix(8, 0.9, (10, 5))
        pattern_xy = np.c_[query_xy, np.ones(len(query_xy))] @ cv2.invertAffineTransform(view_matrix(3, 1.1, (-8, 6))).T
        expected = np.c_[pattern_xy, np.ones(len(pattern_xy))] @ seen.T
        assert len(query_xy) >= MANY_INLIERS
        assert np.median(np.linalg.norm(expected - photo_xy, axis=1)) < 2


def test_pooling_photos_probabilities_by_max_or_noisy_or():
    pairs = pd.DataFrame({"query": [0, 0, 0, 1], "id": ["a", "a", "b", "a"], "individual_votes": [3.0, 3.0, 5.0, 1.0],
                          "inliers": [10, 8, 12, 4], "probability": [0.6, 0.5, 0.7, 0.1]})
    best = individual_scores(pairs, "verifier", "max")
    assert best[["query", "rank", "id"]].values.tolist() == [[0, 0, "b"], [0, 1, "a"], [1, 0, "a"]]
    assert best["score"].tolist() == pytest.approx([0.7, 0.6, 0.1])
    either = individual_scores(pairs, "verifier", "noisy_or")
    # a: 1 - 0.4 * 0.5 = 0.8, above b's 0.7: two good photos count for more than one
    assert either[["query", "rank", "id"]].values.tolist() == [[0, 0, "a"], [0, 1, "b"], [1, 0, "a"]]
    assert either["score"].tolist() == pytest.approx([0.8, 0.7, 0.1])
    assert either["inliers"].tolist() == [10, 12, 4]
    with pytest.raises(ValueError, match="unknown pooling"):
        individual_scores(pairs, "verifier", "mean")


def test_shortlist_recall_is_counted_by_the_right_individual_s_catalogue_photos():
    catalogue = ["a"] + ["b"] * 2 + ["c"] * 10 + ["new_whale"] * 3
    truths = {"q1": "a", "q2": "a", "q3": "b", "q4": "c", "q5": "new_whale", "q6": "z", "q7": "c"}
    shortlists = pd.DataFrame([("q1", 0, "a"), ("q1", 1, "b"), ("q2", 0, "c"), ("q3", 0, "c"), ("q3", 1, "b"),
                               ("q4", 0, "c"), ("q5", 0, "a")], columns=["image", "rank", "id"])
    table = shortlist_recall(shortlists, truths, catalogue).set_index("catalogue_photos")
    # q1, q2 (a: one photo): q1 shortlisted first, q2 missed; q3 (b: two) shortlisted second;
    # q4, q7 (c: ten): q4 first, q7 has no shortlist; q5 and q6 are of no catalogue individual
    assert table.loc["1"].tolist() == [2, 0.5, 0.5]
    assert table.loc["2"].tolist() == [1, 1.0, 0.0]
    assert table.loc["9+"].tolist() == [2, 0.5, 0.5]
    assert table.loc["all"].tolist() == [5, 0.6, 0.4]
    assert table.loc["3-4", "queries"] == 0 and np.isnan(table.loc["3-4", "recall"])


@pytest.mark.parametrize("n_queries, block", [(40, 8), (41, 8), (7, 8), (0, 8), (1000, 64)])
@pytest.mark.parametrize("chunks", [1, 2, 3, 4, 16])
def test_the_chunks_of_a_search_share_its_queries_out_in_whole_blocks(n_queries, block, chunks):
    parts = [chunk_rows(n_queries, chunk, chunks, block) for chunk in range(1, chunks + 1)]
    assert [query for part in parts for query in part] == list(range(n_queries))  # each once, in order
    # a chunk starts on a block's first query, so each query is searched with the same others
    assert all(part.start % block == 0 for part in parts if len(part))
    sizes = [math.ceil(len(part) / block) for part in parts]
    assert max(sizes) - min(sizes) <= 1


def test_a_chunk_is_named_as_snakemake_s_scatter_names_it_and_nothing_else_is_taken():
    assert parse_chunk("3-of-8") == (3, 8)
    for wrong in ("3of8", "3-of-", "a-of-8", "3-8"):
        with pytest.raises(ValueError, match="expected <chunk>-of-<chunks>"):
            parse_chunk(wrong)
    with pytest.raises(ValueError, match="chunk 9 of 8"):
        chunk_rows(40, 9, 8, 8)
