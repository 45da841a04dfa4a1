"""The local method's foreground model (`local.foreground`): which keypoints lie on the animal,
learned from which verify between photos of one individual and which between two.

The photos are the demo generator's scenes: individuals photographed before the same two
shores, the fluke a loose crop, where the generator knows (a mask) where the animal is. The
model never sees a mask: they are only what its weights are judged by.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from whaleid.data.images import read_gray, square_image
from whaleid.demo.dataset import generate_demo_dataset
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.chunks import FitFolds
from whaleid.methods.local.foreground import (
    ForegroundModel,
    KeypointLabels,
    fold_matches,
    keypoint_features,
    keypoint_labels,
    labels_from_matches,
    learn_foreground,
)
from whaleid.methods.local.keypoints import feature_rows, unpack
from whaleid.settings import ForegroundSettings, KeypointSettings, MatchSettings

KEYPOINTS = KeypointSettings.defaults(n_features=300, image_size=448)
MATCHING = MatchSettings.defaults()
FOREGROUND = ForegroundSettings.defaults()


class Scenes:
    """A small scene dataset's keypoints (train and test caches), ids, sites and, for each
    keypoint slot, whether it lies on the animal (from the generator's masks)."""

    def __init__(self, root: Path):
        self.root = root
        self.train = pd.read_csv(root / "train.csv")
        self.test = pd.read_csv(root / "test_truth.csv")
        self.site = pd.read_csv(root / "scenes.csv").set_index("Image")["site"]
        self.keypoints, self.on_animal = {}, {}
        for split, table in (("train", self.train), ("test", self.test)):
            squares, shapes = [], []
            for image in table["Image"]:
                photo = read_gray((root / split / image).read_bytes())
                squares.append(square_image(photo, 896))
                shapes.append(photo.shape)
            self.keypoints[split] = feature_rows(np.stack(squares), KEYPOINTS)
            self.on_animal[split] = np.stack([self._on_animal(split, image, shape, row) for image, shape, row in
                                              zip(table["Image"], shapes, self.keypoints[split])])

    def _on_animal(self, split: str, image: str, shape: tuple[int, int], row: np.ndarray) -> np.ndarray:
        mask = cv2.imread(str(self.root / "masks" / split / (Path(image).stem + ".png")), cv2.IMREAD_GRAYSCALE)
        height, width = shape
        long_side = max(shape)
        # from the square's pixels back to the photo's: preprocessing centred it, then resized
        xy = np.nan_to_num(row["xy"]) * long_side / KEYPOINTS.image_size - [(long_side - width) / 2,
                                                                               (long_side - height) / 2]
        x = np.clip(np.round(xy[:, 0]).astype(int), 0, width - 1)
        y = np.clip(np.round(xy[:, 1]).astype(int), 0, height - 1)
        return (mask[y, x] > 0) & ~np.isnan(row["xy"][:, 0])

    def used(self, split: str) -> np.ndarray:
        return ~np.isnan(self.keypoints[split]["xy"][..., 0])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Scenes:
    root = tmp_path_factory.mktemp("foreground_scenes")
    generate_demo_dataset(root, n_individuals=8, n_train_images=40, n_test_images=12, max_side=700, scene_sites=2,
                          duplicate_test_fraction=0.0, seed=3)
    return Scenes(root)


@pytest.fixture(scope="module")
def labels(scenes) -> KeypointLabels:
    return keypoint_labels(scenes.keypoints["train"], scenes.train["Id"], scenes.train["Image"],
                           image_size=KEYPOINTS.image_size, settings=MATCHING, foreground=FOREGROUND)


@pytest.fixture(scope="module")
def learned(scenes, labels) -> tuple[ForegroundModel, np.ndarray]:
    label = labels.labels()
    photo, slot = np.nonzero(label >= 0)
    rows = scenes.keypoints["train"][photo, slot]
    model = ForegroundModel.fit(keypoint_features(rows["xy"], rows["descriptor"], KEYPOINTS.image_size),
                                label[photo, slot] == 1, KEYPOINTS.image_size, FOREGROUND.seed)
    return model, label


def test_the_labels_of_the_fit_photos_matched_in_chunks_are_those_matched_in_one(scenes, labels):
    """Each fold asks its 13 or 14 photos in one block of 64: of 2 chunks, the first asks fold 0's
    block, the second those of folds 1 and 2; gathered, the labels are the same to the bit."""
    assert FitFolds.draw(40, FOREGROUND.folds, None, FOREGROUND.seed).chunk(2, 2, MATCHING.query_block)[0][0] == 1
    chunks = [fold_matches(scenes.keypoints["train"], scenes.train["Id"], image_size=KEYPOINTS.image_size,
                           settings=MATCHING, foreground=FOREGROUND, chunk=(chunk, 2)) for chunk in (1, 2)]
    assert all(len(pairs) for pairs, _ in chunks)
    gathered = labels_from_matches(scenes.keypoints["train"], scenes.train["Image"], *zip(*chunks),
                                   image_size=KEYPOINTS.image_size, settings=MATCHING)
    np.testing.assert_array_equal(gathered.same, labels.same)
    np.testing.assert_array_equal(gathered.different, labels.different)
    pd.testing.assert_frame_equal(gathered.pairs, labels.pairs)


def test_keypoints_that_verify_between_two_individuals_are_labelled_background(scenes, learned):
    _, label = learned
    on_animal = scenes.on_animal["train"]
    # the labels come from matching alone; the masks say they are mostly right
    assert on_animal[label == 0].mean() < 0.05
    assert on_animal[label == 1].mean() > 0.5
    # and there is background to learn from: the scenes' shores verify between individuals
    assert (label == 0).sum() > (label == 1).sum() > 100


def test_foreground_weights_of_unseen_scenes_lie_on_the_animal(scenes, learned):
    model, _ = learned
    weights = model.weights(scenes.keypoints["test"])
    used, on_animal = scenes.used("test"), scenes.on_animal["test"]
    unweighted_share = on_animal[used].mean()
    weighted_share = weights[used & on_animal].sum() / weights[used].sum()
    # most keypoints of a loose crop are background; weighed, the animal's share is several times more
    assert unweighted_share < 0.25
    assert weighted_share > 2 * unweighted_share
    # a keypoint on the animal weighs more than one on the background, nearly always
    animal, background = weights[used & on_animal], weights[used & ~on_animal]
    rank_auc = (animal[:, None] > background[None, :]).mean()
    assert rank_auc > 0.85, rank_auc
    assert 0 <= weights.min() and weights.max() <= 1 and not weights[~used].any()


def test_a_background_shared_by_two_individuals_weighs_less_than_either_animal(scenes, learned):
    """Two test photos of different individuals at one site: the keypoints their match verifies
    are on the shared shore, and weigh less than each photo's keypoints on its animal."""
    from whaleid.methods.local.geometry import fit_transform, ratio_matches, root_sift

    model, _ = learned
    weights = model.weights(scenes.keypoints["test"])
    test = scenes.test.reset_index(drop=True)
    checked = 0
    for a in range(len(test)):
        for b in range(a + 1, len(test)):
            one_individual = test.at[a, "Id"] == test.at[b, "Id"]
            if one_individual or scenes.site[test.at[a, "Image"]] != scenes.site[test.at[b, "Image"]]:
                continue
            (a_xy, a_d), (b_xy, b_d) = unpack(scenes.keypoints["test"][a]), unpack(scenes.keypoints["test"][b])
            (rows, matched, _), = ratio_matches(root_sift(a_d), [root_sift(b_d)], MATCHING.ratio)
            inlier, _ = fit_transform(a_xy[rows], b_xy[matched], MATCHING, KEYPOINTS.image_size)
            if inlier.sum() < 20:
                continue
            shared = np.concatenate([weights[a][:len(a_xy)][rows[inlier]], weights[b][:len(b_xy)][matched[inlier]]])
            for photo in (a, b):
                animal = weights[photo][scenes.on_animal["test"][photo]]
                assert np.median(shared) < np.median(animal), (test.at[a, "Image"], test.at[b, "Image"])
            checked += 1
    assert checked >= 3


def test_weights_multiply_votes_and_inliers_and_weights_of_one_change_nothing(scenes, learned):
    model, _ = learned
    train, test = scenes.keypoints["train"], scenes.keypoints["test"]
    known = (scenes.train["Id"] != "new_whale").to_numpy()
    ones = LocalCatalogue(train[known], scenes.train["Id"][known], KEYPOINTS.image_size, MATCHING)
    plain = match_queries(ones, test)
    same = match_queries(LocalCatalogue(train[known], scenes.train["Id"][known], KEYPOINTS.image_size, MATCHING,
                                        np.ones(train[known].shape, np.float32)), test, np.ones(test.shape, np.float32))
    pd.testing.assert_frame_equal(plain, same)
    assert (plain["foreground_inliers"] == plain["inliers"]).all()
    weighed = LocalCatalogue(train[known], scenes.train["Id"][known], KEYPOINTS.image_size, MATCHING,
                             model.weights(train[known]))
    pairs = match_queries(weighed, test, model.weights(test))
    assert (pairs["foreground_inliers"] <= pairs["inliers"]).all()
    assert (pairs["foreground_inliers"] < pairs["inliers"]).mean() > 0.9
    # a photo whose keypoints weigh nothing gets no vote
    zero = model.weights(train[known])
    zero[0] = 0
    silent = LocalCatalogue(train[known], scenes.train["Id"][known], KEYPOINTS.image_size, MATCHING, zero)
    _, descriptors = unpack(test[0])
    from whaleid.methods.local.geometry import root_sift

    distances, neighbours = silent.index.search(root_sift(descriptors), MATCHING.neighbours + 1)
    _, photo_votes = silent.votes(distances, neighbours, model.weights(test[:1])[0][:len(descriptors)])
    assert photo_votes[np.flatnonzero(silent.photos == 0)].sum() == 0
    assert photo_votes.sum() > 0


def write_train_tables(scenes, folder) -> np.ndarray:
    """The scenes' train table and a split of it (every fourth photo validation, the rest fit)
    written as train.csv and split.csv in `folder`; the subsets."""
    subset = np.where(np.arange(len(scenes.train)) % 4 == 0, "validation", "fit")
    pd.DataFrame({"image": scenes.train["Image"], "id": scenes.train["Id"], "subset": subset,
                  "truth": scenes.train["Id"]}).to_csv(folder / "split.csv", index=False)
    pd.DataFrame({"image": scenes.train["Image"], "id": scenes.train["Id"]}).to_csv(folder / "train.csv", index=False)
    return subset


def test_the_foreground_model_learns_from_fit_photos_only(scenes, tmp_path):
    """A leak test: validation photos' keypoints changed beyond recognition, and the test split
    not given at all, the model and every fit photo's labels are the same."""
    train = scenes.keypoints["train"]
    subset = write_train_tables(scenes, tmp_path)
    scrambled = train.copy()
    rng = np.random.default_rng(0)
    validation = subset == "validation"
    scrambled["descriptor"][validation] = rng.integers(0, 256, scrambled["descriptor"][validation].shape)
    scrambled["xy"][validation] = rng.uniform(0, KEYPOINTS.image_size, scrambled["xy"][validation].shape)
    found = []
    for cache in (train, scrambled):
        np.save(tmp_path / "keypoints.npy", cache)
        model, labels = learn_foreground(tmp_path / "keypoints.npy", tmp_path / "train.csv", tmp_path / "split.csv",
                                         settings=MATCHING, foreground=FOREGROUND, image_size=KEYPOINTS.image_size,
                                         n_jobs=1)
        found.append((model.weights(scenes.keypoints["test"]), labels))
    (weights, labels), (scrambled_weights, scrambled_labels) = found
    np.testing.assert_array_equal(weights, scrambled_weights)
    np.testing.assert_array_equal(labels.same, scrambled_labels.same)
    assert len(labels.same) == (~validation).sum()
    assert set(labels.pairs["image"]) | set(labels.pairs["photo"]) <= set(scenes.train["Image"][~validation])


def test_where_more_keypoints_are_found_than_kept_the_model_learns_from_the_strongest(scenes, tmp_path):
    """With local.detected_per_kept above 1, the cache holds weaker keypoints after each photo's
    strongest: the foreground model is the one the strongest alone give, whatever follows them."""
    train = scenes.keypoints["train"]
    write_train_tables(scenes, tmp_path)
    rng = np.random.default_rng(1)
    weaker = train.copy()
    weaker["descriptor"] = rng.integers(0, 256, weaker["descriptor"].shape)
    weaker["xy"] = rng.uniform(0, KEYPOINTS.image_size, weaker["xy"].shape)
    models = []
    for cache, strongest in ((train, None), (np.concatenate([train, weaker], axis=1), train.shape[1])):
        np.save(tmp_path / "keypoints.npy", cache)
        models.append(learn_foreground(tmp_path / "keypoints.npy", tmp_path / "train.csv", tmp_path / "split.csv",
                                       settings=MATCHING, foreground=FOREGROUND, image_size=KEYPOINTS.image_size,
                                       n_jobs=1, strongest=strongest))
    (model, labels), (from_strongest, strongest_labels) = models
    assert model.learned
    np.testing.assert_array_equal(model.weights(scenes.keypoints["test"]),
                                  from_strongest.weights(scenes.keypoints["test"]))
    np.testing.assert_array_equal(labels.same, strongest_labels.same)


def test_at_most_max_queries_photos_are_asked(scenes):
    few = ForegroundSettings.defaults(max_queries=5)
    labels = keypoint_labels(scenes.keypoints["train"], scenes.train["Id"], scenes.train["Image"],
                             image_size=KEYPOINTS.image_size, settings=MATCHING, foreground=few)
    asked = set(labels.pairs["image"])
    assert 0 < len(asked) <= 5
    # each asked photo checked against its own individual's photos and others', at most as many as set
    assert labels.pairs.groupby("image")["same"].agg(["sum", "size"]).pipe(
        lambda counts: ((counts["sum"] <= few.positives) & (counts["size"] - counts["sum"] <= few.negatives)).all())


def test_too_few_labelled_keypoints_is_a_clear_error():
    features = np.zeros((3, 131), np.float32)
    with pytest.raises(ValueError, match="too few to learn a foreground"):
        ForegroundModel.fit(features, np.array([True, False, False]), 448, 0)


def test_foreground_settings_reject_bad_values():
    with pytest.raises(ValueError, match="folds"):
        ForegroundSettings.defaults(folds=1)
    with pytest.raises(ValueError, match="negatives"):
        ForegroundSettings.defaults(negatives=0)
