"""Catalogues of mostly one photo per individual (a new photo-ID project, Kaggle's skew): what the
local method learns from pairs of one individual (the foreground model, the verifier) goes on
without them, says so in the log, and never fails.

The photos are the demo generator's, at 1.0 and 1.2 photos per individual: with one each there
is no pair of one individual to learn from at all; with 1.2 a few.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from whaleid.data.images import read_gray, square_image
from whaleid.demo.dataset import generate_demo_dataset
from whaleid.methods.local.chunks import gather_tables
from whaleid.methods.local.foreground import ForegroundModel, learn_foreground, write_weights
from whaleid.methods.local.keypoints import feature_rows
from whaleid.methods.local.verifier import Verifier, learn_verifier, verifier_pairs
from whaleid.settings import ForegroundSettings, KeypointSettings, MatchSettings, VerifierSettings

KEYPOINTS = KeypointSettings.defaults(n_features=200, image_size=448)
MATCHING = MatchSettings.defaults()
N_INDIVIDUALS = 20


def sparse_catalogue(root: Path, photos_per_individual: float) -> dict[str, Path]:
    """A generated catalogue of `N_INDIVIDUALS` at `photos_per_individual`, every train photo a fit
    photo: its keypoint caches (train, test), train index and split, as the local rules read them."""
    generate_demo_dataset(root, n_individuals=N_INDIVIDUALS,
                          n_train_images=round(N_INDIVIDUALS * photos_per_individual), n_test_images=4,
                          new_whale_train_fraction=0.0, duplicate_test_fraction=0.0, max_side=400, seed=11)
    files = {"train_index": root / "train_index.csv", "split": root / "split.csv"}
    for split, table in (("train", pd.read_csv(root / "train.csv")), ("test", pd.read_csv(root / "test_truth.csv"))):
        squares = [square_image(read_gray((root / split / image).read_bytes()), 448) for image in table["Image"]]
        files[split] = root / f"{split}_keypoints.npy"
        np.save(files[split], feature_rows(np.stack(squares), KEYPOINTS))
        if split == "train":
            pd.DataFrame({"image": table["Image"], "id": table["Id"]}).to_csv(files["train_index"], index=False)
            pd.DataFrame({"image": table["Image"], "id": table["Id"], "subset": "fit", "truth": table["Id"]}
                         ).to_csv(files["split"], index=False)
    return files


@pytest.fixture(scope="module", params=[1.0, 1.2], ids=["one_photo_each", "1.2_photos_each"])
def catalogue(request, tmp_path_factory) -> tuple[float, dict[str, Path]]:
    return request.param, sparse_catalogue(tmp_path_factory.mktemp("sparse"), request.param)


def test_the_foreground_model_of_a_sparse_catalogue_weighs_or_says_it_could_not(catalogue, tmp_path, caplog):
    photos_per_individual, files = catalogue
    with caplog.at_level(logging.WARNING):
        model, labels = learn_foreground(files["train"], files["train_index"], files["split"], settings=MATCHING,
                                         foreground=ForegroundSettings.defaults(), image_size=KEYPOINTS.image_size,
                                         n_jobs=1)
    not_learned = "foreground NOT LEARNED" in caplog.text
    assert not_learned == (not model.learned)
    if photos_per_individual == 1.0:
        # not one pair of one individual: nothing can be on an individual
        assert not_learned and labels.same.sum() == 0 and not labels.pairs["same"].any()
    model.save(tmp_path / "model.joblib")
    weights = write_weights(ForegroundModel.load(tmp_path / "model.joblib"), files["test"], tmp_path / "weights.npy")
    used = ~np.isnan(np.load(files["test"])["xy"][..., 0])
    assert used.any() and np.isfinite(weights).all()
    if not_learned:
        # as local.foreground: none weighs them
        np.testing.assert_array_equal(weights[used], 1.0)
        np.testing.assert_array_equal(weights[~used], 0.0)
    else:
        assert ((weights[used] >= 0) & (weights[used] <= 1)).all()


def test_the_verifier_of_a_sparse_catalogue_scores_pairs_by_calibrated_inliers(catalogue, tmp_path, caplog):
    photos_per_individual, files = catalogue
    # blocks of 4 photos, 3 chunks: a chunk asks the blocks of more than one fold
    settings, verifier_settings = replace(MATCHING, query_block=4), VerifierSettings.defaults()

    def matched(chunk: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
        return verifier_pairs(files["train"], files["train_index"], files["split"], settings=settings,
                              verifier_settings=verifier_settings, image_size=KEYPOINTS.image_size, n_jobs=1,
                              chunk=chunk)

    whole, chunks = matched((1, 1)), [matched((chunk, 3)) for chunk in (1, 2, 3)]
    for table, chunked in zip(whole, zip(*chunks)):  # gathered, the chunks' tables are the one's
        pd.testing.assert_frame_equal(gather_tables(chunked), table)
    with caplog.at_level(logging.WARNING):
        verifier, pairs, answers = learn_verifier([whole[0]], [whole[1]], verifier_settings=verifier_settings, n_jobs=1)
    assert ("verifier NOT LEARNED" in caplog.text) == (not verifier.learned)
    if photos_per_individual == 1.0:
        assert not verifier.learned and not pairs["same"].any()
    assert len(pairs) and pairs["probability"].between(0, 1).all()
    # every photo asked answered out of fold by each pooling (its best four), a probability where
    # anything verified
    assert len(answers.query("rank == 0")) == 2 * len(whole[1]) and set(answers["pooling"]) == {"max", "noisy_or"}
    assert answers["rank"].between(0, 3).all() and not answers.duplicated(["pooling", "image", "rank"]).any()
    answered = answers["answer"] != ""
    assert answered.any() and answers.loc[answered, "probability"].between(0, 1).all()
    assert answers.loc[~answered, "probability"].isna().all() and not answers.loc[~answered, "right"].any()
    # against every photo of the other folds, a photo's own individual can only rank higher than
    # against as many of its photos as a survey's individual has (the default): right first
    # there, right first here too
    _, _, against_all = learn_verifier([whole[0]], [whole[1]], verifier_settings=verifier_settings, n_jobs=1,
                                       answers_against="all")
    first = ["pooling", "image"]
    survey_right = answers.query("rank == 0").set_index(first)["right"]
    all_right = against_all.query("rank == 0").set_index(first)["right"].reindex(survey_right.index)
    assert not (survey_right & ~all_right).any()
    assert (pairs["survey_like"] | pairs["same"]).all()  # only pairs of the photo's own individual are left out
    with pytest.raises(ValueError, match="unknown fold answers 'some'"):
        learn_verifier([whole[0]], [whole[1]], verifier_settings=verifier_settings, n_jobs=1, answers_against="some")
    verifier.save(tmp_path / "verifier.joblib")
    loaded = Verifier.load(tmp_path / "verifier.joblib")
    np.testing.assert_array_equal(loaded.probability(pairs), verifier.probability(pairs))
    if not verifier.learned:
        # no held-out scores without trees: the calibration's own
        np.testing.assert_array_equal(pairs["probability"].to_numpy(), verifier.probability(pairs))
        # more inliers, likelier of one individual; and the pooled probability kept as it is
        order = np.argsort(pairs["foreground_inliers"].to_numpy(), kind="stable")
        assert (np.diff(pairs["probability"].to_numpy()[order]) >= 0).all()
        more = pairs.assign(foreground_inliers=pairs["foreground_inliers"] + 5)
        assert (loaded.probability(more) > loaded.probability(pairs)).all()
        for calibration in loaded.individuals.values():
            np.testing.assert_allclose(calibration(np.linspace(0, 1, 11)), np.linspace(0, 1, 11), atol=1e-3)
        assert 0 <= loaded.absent <= 1
