"""Tests of the synthetic fluke dataset: layout, determinism, statistics and identity signal."""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from whaleid.demo.dataset import generate_demo_dataset, make_contact_sheet

TINY = dict(n_individuals=20, n_train_images=100, n_test_images=50, max_side=160)
IMAGE_NAME = re.compile(r"^[0-9a-f]{8}\.jpg$")
WHALE_ID = re.compile(r"^w_[0-9a-f]{7}$")


def read_csv(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [tuple(r) for r in rows[1:]]


def gray_signature(path: Path) -> np.ndarray:
    """Unit-norm, zero-mean central crop of a 64x64 grayscale thumbnail: NCC is a dot product."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64)
    centre = small[16:48, 6:58]
    centre = centre - centre.mean()
    return centre.ravel() / (np.linalg.norm(centre) + 1e-9)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny")
    stats = generate_demo_dataset(out, seed=3, **TINY)
    return out, stats


def test_layout_headers_and_images(tiny):
    out, _ = tiny
    header, train = read_csv(out / "train.csv")
    assert header == ["Image", "Id"]
    for csv_name in ["test_truth.csv", "sample_submission.csv"]:
        assert read_csv(out / csv_name)[0] == ["Image", "Id"]
    _, truth = read_csv(out / "test_truth.csv")

    train_names = [name for name, _ in train]
    test_names = [name for name, _ in truth]
    assert len(train_names) == TINY["n_train_images"] and len(test_names) == TINY["n_test_images"]
    assert len(set(train_names + test_names)) == len(train_names) + len(test_names)
    assert all(IMAGE_NAME.match(name) for name in train_names + test_names)
    assert all(WHALE_ID.match(whale) or whale == "new_whale" for _, whale in train + truth)
    # Exactly the listed files, nothing half-written left behind.
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(train_names)
    assert sorted(p.name for p in (out / "test").iterdir()) == sorted(test_names)
    assert sorted(p.name for p in out.iterdir()) == [
        "sample_submission.csv", "test", "test_truth.csv", "train", "train.csv"]

    for split, names in [("train", train_names), ("test", test_names)]:
        for name in names:
            image = cv2.imread(str(out / split / name), cv2.IMREAD_UNCHANGED)
            assert image is not None and image.size > 0, name
            assert max(image.shape[:2]) <= TINY["max_side"]


def test_returned_statistics_match_the_files(tiny):
    out, stats = tiny
    _, train = read_csv(out / "train.csv")
    _, truth = read_csv(out / "test_truth.csv")
    counts = Counter(whale for _, whale in train if whale != "new_whale")
    assert stats["individuals"] == len(counts) == TINY["n_individuals"]
    assert stats["train_images"] == len(train)
    assert stats["test_images"] == len(truth)
    assert stats["singletons"] == sum(1 for c in counts.values() if c == 1)
    assert stats["new_whale_train_images"] == sum(1 for _, w in train if w == "new_whale")
    assert stats["unseen_test_images"] == sum(1 for _, w in truth if w == "new_whale")
    assert stats["duplicate_test_images"] == round(0.05 * TINY["n_test_images"])


def test_playground_like_statistics(tiny):
    out, _ = tiny
    _, train = read_csv(out / "train.csv")
    _, truth = read_csv(out / "test_truth.csv")
    counts = Counter(whale for _, whale in train if whale != "new_whale")

    singleton_share = sum(1 for c in counts.values() if c == 1) / len(counts)
    assert 0.4 <= singleton_share <= 0.6
    assert max(counts.values()) >= 3 * np.median([c for c in counts.values() if c > 1]) / 2  # long tail
    new_whale_share = sum(1 for _, w in train if w == "new_whale") / len(train)
    assert abs(new_whale_share - 0.08) <= 0.02

    unseen_share = sum(1 for _, w in truth if w == "new_whale") / len(truth)
    assert abs(unseen_share - 0.3) <= 0.05
    seen = [w for _, w in truth if w != "new_whale"]
    assert set(seen) <= set(counts)
    from_multi = sum(1 for w in seen if counts[w] >= 2)
    assert from_multi > len(seen) / 2  # mostly individuals with several train photos


def test_sample_submission(tiny):
    out, _ = tiny
    _, train = read_csv(out / "train.csv")
    _, truth = read_csv(out / "test_truth.csv")
    _, submission = read_csv(out / "sample_submission.csv")
    assert [name for name, _ in submission] == [name for name, _ in truth]
    counts = Counter(whale for _, whale in train if whale != "new_whale")
    top = sorted(counts, key=lambda w: (-counts[w], w))[:4]
    for _, guess in submission:
        ids = guess.split(" ")
        assert len(ids) == 5 and len(set(ids)) == 5
        assert ids == ["new_whale", *top]


@pytest.fixture(scope="module")
def photo_sized(tmp_path_factory) -> tuple[Path, dict]:
    """Few images at the default max_side (1050 px): slower per image, so kept small."""
    out = tmp_path_factory.mktemp("photo_sized")
    stats = generate_demo_dataset(
        out, n_individuals=6, n_train_images=30, n_test_images=16, duplicate_test_fraction=0.25, seed=5
    )
    return out, stats


def _band_pass(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.GaussianBlur(small, (0, 0), 1.0) - cv2.GaussianBlur(small, (0, 0), 4.0)


def duplicate_score(test_image: np.ndarray, train_image: np.ndarray) -> float:
    """Fine-detail correlation, tolerant to a few pixels of recrop: only the same photo scores high.

    Another photo of the same whale has different sea, sky and noise, so its fine detail
    does not correlate even where the fluke looks alike.
    """
    h, w = train_image.shape
    if abs(test_image.shape[1] / test_image.shape[0] - w / h) > 0.05 * w / h:
        return 0.0
    size = (256, round(256 * h / w))
    template = _band_pass(test_image, size)[6:-6, 6:-6]
    return float(cv2.matchTemplate(_band_pass(train_image, size), template, cv2.TM_CCOEFF_NORMED).max())


def test_near_duplicates_are_train_photos_reencoded(photo_sized):
    out, stats = photo_sized
    _, train = read_csv(out / "train.csv")
    _, truth = read_csv(out / "test_truth.csv")
    train_images = [cv2.imread(str(out / "train" / name), cv2.IMREAD_GRAYSCALE) for name, _ in train]
    duplicates = 0
    for name, whale in truth:
        test_image = cv2.imread(str(out / "test" / name), cv2.IMREAD_GRAYSCALE)
        scores = [duplicate_score(test_image, train_image) for train_image in train_images]
        best = int(np.argmax(scores))
        assert not 0.6 < scores[best] < 0.8, "duplicates and distinct photos should be far apart"
        if scores[best] >= 0.8:
            duplicates += 1
            assert train[best][1] == whale
            assert (out / "test" / name).read_bytes() != (out / "train" / train[best][0]).read_bytes()
    assert duplicates == stats["duplicate_test_images"] == 4


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    small = dict(n_individuals=6, n_train_images=20, n_test_images=10, max_side=96)
    generate_demo_dataset(tmp_path / "a", seed=11, **small)
    generate_demo_dataset(tmp_path / "b", seed=11, **small)
    generate_demo_dataset(tmp_path / "c", seed=12, **small)
    a, b, c = (_all_bytes(tmp_path / x) for x in "abc")
    assert len(a) == 20 + 10 + 3
    assert a == b
    assert set(a) != set(c)
    images_a = {v for k, v in a.items() if k.endswith(".jpg")}
    images_c = {v for k, v in c.items() if k.endswith(".jpg")}
    assert not images_a & images_c


@pytest.mark.parametrize("scene_sites", [0, 2])
def test_any_number_of_threads_draws_the_same_files(tmp_path, scene_sites):
    small = dict(n_individuals=6, n_train_images=20, n_test_images=10, max_side=160, scene_sites=scene_sites,
                 seed=3)
    generate_demo_dataset(tmp_path / "one", threads=1, **small)
    generate_demo_dataset(tmp_path / "three", threads=3, **small)
    one = _all_bytes(tmp_path / "one")
    assert sum(name.endswith(".jpg") for name in one) == 30
    assert sum(name.startswith("masks/") for name in one) == (30 if scene_sites else 0)
    assert one == _all_bytes(tmp_path / "three")


def test_reference_size_share_at_default_max_side(photo_sized):
    out, stats = photo_sized
    sizes = []
    for split in ["train", "test"]:
        for path in (out / split).iterdir():
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            sizes.append((image.shape[1], image.shape[0]))
    assert stats["train_images"] + stats["test_images"] == len(sizes)
    share = sum(1 for s in sizes if s == (1050, 600)) / len(sizes)
    assert 0.07 <= share <= 0.15
    assert max(max(s) for s in sizes) <= 1050
    assert len(set(sizes)) >= len(sizes) // 2  # the rest are mixed
    assert any(w < h for w, h in sizes)  # some portrait
    assert sum(1 for w, h in sizes if w > h) > 0.7 * len(sizes)  # landscape mostly


def test_reference_size_scales_with_max_side(tiny):
    out, _ = tiny
    sizes = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[:2] for p in sorted((out / "train").iterdir())]
    share = sum(1 for h, w in sizes if (w, h) == (160, 91)) / len(sizes)
    assert 0.05 <= share <= 0.2


def _same_and_different_similarity(out: Path) -> tuple[np.ndarray, np.ndarray]:
    _, train = read_csv(out / "train.csv")
    named = [(name, whale) for name, whale in train if whale != "new_whale"]
    signature = {name: gray_signature(out / "train" / name) for name, _ in named}
    same, different = [], []
    for (a, wa), (b, wb) in itertools.combinations(named, 2):
        (same if wa == wb else different).append(float(signature[a] @ signature[b]))
    return np.array(same), np.array(different)


def test_identity_is_carried_by_the_fluke(tmp_path):
    # Scenery is drawn independently for every photo, so only the fluke can make two
    # photos of one whale alike.
    generate_demo_dataset(
        tmp_path, n_individuals=10, n_train_images=60, n_test_images=0, difficulty=0.2, max_side=160, seed=1
    )
    same, different = _same_and_different_similarity(tmp_path)
    assert len(same) >= 50 and len(different) >= 200
    gap = same.mean() - different.mean()
    standard_error = np.hypot(same.std() / np.sqrt(len(same)), different.std() / np.sqrt(len(different)))
    assert gap > 0.15
    assert gap > 8 * standard_error


def test_difficulty_controls_photo_to_photo_variation(tmp_path):
    small = dict(n_individuals=5, n_train_images=30, n_test_images=0, max_side=128, seed=2)
    generate_demo_dataset(tmp_path / "easy", difficulty=0.0, **small)
    generate_demo_dataset(tmp_path / "hard", difficulty=1.0, **small)
    easy_same, _ = _same_and_different_similarity(tmp_path / "easy")
    hard_same, _ = _same_and_different_similarity(tmp_path / "hard")
    assert easy_same.mean() > hard_same.mean() + 0.2


def test_contact_sheet_grid(tiny, tmp_path):
    out, _ = tiny
    sheet_path = tmp_path / "sheet.png"
    make_contact_sheet(out, sheet_path, n_individuals=3, photos_per_individual=4, thumb=64)
    sheet = cv2.imread(str(sheet_path), cv2.IMREAD_UNCHANGED)
    assert sheet.shape == (3 * 64, 5 * 64, 3)
    # The photo cells are not blank: the three most photographed whales have 4+ photos.
    assert all(sheet[r * 64 : (r + 1) * 64, 64:].std() > 5 for r in range(3))
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_individuals=50, n_train_images=40),
        dict(difficulty=1.5),
        dict(unseen_test_fraction=0.8, duplicate_test_fraction=0.3),
        dict(max_side=8),
        dict(threads=0),
    ],
)
def test_rejects_impossible_settings(tmp_path, bad):
    with pytest.raises(ValueError):
        generate_demo_dataset(tmp_path, **bad)


# --- scenes ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scenes")
    generate_demo_dataset(out, n_individuals=6, n_train_images=16, n_test_images=6, max_side=600, scene_sites=2,
                          seed=1)
    return out


def test_scene_photos_show_a_small_animal_the_generator_knows(scenes):
    _, train = read_csv(scenes / "train.csv")
    _, test = read_csv(scenes / "test_truth.csv")
    header, sites = read_csv(scenes / "scenes.csv")
    assert header == ["Image", "site"]
    assert sorted(image for image, _ in sites) == sorted(image for image, _ in train + test)
    assert {site for _, site in sites} == {"0", "1"}
    for split, rows in (("train", train), ("test", test)):
        for image, _ in rows:
            photo = cv2.imread(str(scenes / split / image), cv2.IMREAD_GRAYSCALE)
            mask = cv2.imread(str(scenes / "masks" / split / (Path(image).stem + ".png")), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == photo.shape and set(np.unique(mask)) <= {0, 255}
            # a loose crop: the animal is a small part of the frame
            assert 0.003 < (mask > 0).mean() < 0.15, image


def test_scene_backgrounds_verify_between_different_individuals(scenes):
    """The trouble the scene variant exists for: two individuals' photos at one site share
    more inliers than two photos of one individual taken at different sites."""
    from whaleid.data.images import read_gray, square_image
    from whaleid.methods.local.geometry import fit_inliers, ratio_matches, root_sift
    from whaleid.methods.local.keypoints import extract_features
    from whaleid.settings import KeypointSettings, MatchSettings

    keypoints, matching = KeypointSettings.defaults(), MatchSettings.defaults()
    _, train = read_csv(scenes / "train.csv")
    site = dict(read_csv(scenes / "scenes.csv")[1])
    found = {}
    for image, _ in train:
        xy, descriptors = extract_features(square_image(read_gray((scenes / "train" / image).read_bytes()), 896),
                                           keypoints)
        found[image] = xy, root_sift(descriptors)
    inliers = {(True, False): [], (False, True): []}  # (same individual, same site)
    for (a, id_a), (b, id_b) in itertools.combinations([row for row in train if row[1] != "new_whale"], 2):
        key = (id_a == id_b, site[a] == site[b])
        if key in inliers:
            (a_xy, a_d), (b_xy, b_d) = found[a], found[b]
            (rows, matched, _), = ratio_matches(a_d, [b_d], matching.ratio)
            inliers[key].append(fit_inliers(a_xy[rows], b_xy[matched], matching, keypoints.image_size))
    same_individual_elsewhere, others_at_one_site = inliers[(True, False)], inliers[(False, True)]
    assert same_individual_elsewhere and others_at_one_site
    assert np.median(others_at_one_site) > np.median(same_individual_elsewhere)


def test_scene_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="scene_sites"):
        generate_demo_dataset(tmp_path, n_individuals=2, n_train_images=4, n_test_images=0, scene_sites=-1)
