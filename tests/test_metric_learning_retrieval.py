"""The metric-learning method's identification: individuals ranked by the cosine similarity of
their photos' embeddings, and the catalogue extended without retraining."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from whaleid.identification.answers import final_answers, sweep_new_whale_threshold
from whaleid.methods.metric_learning import retrieval
from whaleid.settings import threshold_grid


def at(*degrees):
    """Unit vectors in the plane at these angles: the cosine similarity of two is the cosine of
    the angle between them."""
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def similarity(degrees):
    return np.float32(np.cos(np.radians(degrees)))


# Five individuals, one photo each, 10 degrees apart from 10 to 50, listed out of id order.
FIVE = at(30, 10, 50, 20, 40)
FIVE_IDS = ["c", "a", "e", "b", "d"]

# An individual scored by its best photo (the setting aggregate: max; top_k is then unused).
BEST_PHOTO = dict(aggregate="max", top_k=1)


def answers(query, catalogue, catalogue_ids, threshold, duplicates=None):
    """Five answers per query, as the method gives them: the catalogue's individuals ranked by
    their best photo, new_whale where the similarity falls below `threshold`, each query's
    `duplicates` of catalogue photos first."""
    return final_answers(retrieval.rank_catalogue(query, catalogue, catalogue_ids, **BEST_PHOTO), threshold, duplicates)


def test_individuals_are_ranked_by_similarity():
    candidates = retrieval.rank_catalogue(at(0), FIVE * 3.0, FIVE_IDS, **BEST_PHOTO)  # raw lengths do not matter
    assert candidates.ids == [["a", "b", "c", "d"]]
    np.testing.assert_allclose(candidates.top, [[similarity(10), similarity(20), similarity(30), similarity(40)]],
                               rtol=1e-6)
    assert candidates.own.tolist() == [-np.inf]
    assert retrieval.rank_catalogue(at(55), FIVE, FIVE_IDS, **BEST_PHOTO).ids == [["e", "d", "c", "b"]]


# "lucky" has one photo almost on the query among far ones; "steady" has three medium ones.
BEST_OF_PHOTOS = at(5, 120, 150, 20, 25, 30, 60, 80)
BEST_OF_PHOTOS_IDS = ["lucky", "lucky", "lucky", "steady", "steady", "steady", "x", "y"]


def test_an_individual_is_as_close_as_its_closest_photo():
    candidates = retrieval.rank_catalogue(at(0), BEST_OF_PHOTOS, BEST_OF_PHOTOS_IDS, **BEST_PHOTO)
    assert candidates.ids == [["lucky", "steady", "x", "y"]]
    np.testing.assert_allclose(candidates.top[0, :2], [similarity(5), similarity(20)], rtol=1e-6)


def test_the_mean_of_the_best_photos_prefers_the_steady_match():
    candidates = retrieval.rank_catalogue(at(0), BEST_OF_PHOTOS, BEST_OF_PHOTOS_IDS, aggregate="mean_top_k", top_k=2)
    assert candidates.ids == [["steady", "x", "lucky", "y"]]
    np.testing.assert_allclose(candidates.top[0], [(similarity(20) + similarity(25)) / 2, similarity(60),
                                                   (similarity(5) + similarity(120)) / 2, similarity(80)], rtol=1e-6)


def test_an_individual_with_fewer_photos_than_k_averages_those_it_has():
    candidates = retrieval.rank_catalogue(at(0), BEST_OF_PHOTOS, BEST_OF_PHOTOS_IDS, aggregate="mean_top_k", top_k=5)
    means = {"lucky": np.mean(similarity([5, 120, 150])), "steady": np.mean(similarity([20, 25, 30])),
             "x": similarity(60), "y": similarity(80)}
    assert candidates.ids == [["steady", "x", "y", "lucky"]]
    np.testing.assert_allclose(candidates.top[0], [means[i] for i in candidates.ids[0]], rtol=1e-6)


# The similarities to the query at 0 degrees: a 0.985, b 0.940, c 0.866, d 0.766.
@pytest.mark.parametrize("threshold, expected", [
    (0.99, ["new_whale", "a", "b", "c", "d"]),
    (0.95, ["a", "new_whale", "b", "c", "d"]),
    (0.8, ["a", "b", "c", "new_whale", "d"]),
    (0.7, ["a", "b", "c", "d", "new_whale"]),
])
def test_new_whale_goes_where_the_similarity_falls_below_the_threshold(threshold, expected):
    assert answers(at(0), FIVE, FIVE_IDS, threshold) == [expected]


def test_duplicates_of_catalogue_photos_come_first():
    assert answers(at(0, 0), FIVE, FIVE_IDS, 0.8, duplicates=[[(3, "e")], []]) == [
        ["e", "a", "b", "c", "new_whale"], ["a", "b", "c", "new_whale", "d"]]


def test_ties_go_to_the_id_that_sorts_first():
    # "zeta" and "alpha" share a photo; "mid" and "late" tie for the fourth place.
    catalogue = at(10, 10, 20, 30, 30, 30)
    ids = ["zeta", "alpha", "beta", "mid", "late", "late"]
    for block_size in (retrieval.DEFAULT_BLOCK_SIZE, 1):
        ranked = retrieval.rank_catalogue(at(0), catalogue, ids, **BEST_PHOTO, block_size=block_size)
        assert ranked.ids == [["alpha", "zeta", "beta", "late"]]


def test_new_whale_photos_of_the_catalogue_are_no_individual():
    catalogue = np.vstack([at(0, 0), FIVE])
    candidates = retrieval.rank_catalogue(at(0), catalogue, ["new_whale", "new_whale", *FIVE_IDS], **BEST_PHOTO)
    assert candidates.ids == [["a", "b", "c", "d"]]
    with pytest.raises(ValueError, match="the catalogue: 3 known individuals"):
        retrieval.rank_catalogue(at(0), catalogue[:5], ["new_whale", "new_whale", "c", "a", "e"], **BEST_PHOTO)


def test_too_few_individuals_and_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="the catalogue: 3 known individuals; five distinct answers need at least 4"):
        retrieval.rank_catalogue(at(0), FIVE, ["a", "a", "b", "b", "c"], **BEST_PHOTO)
    with pytest.raises(ValueError, match="dimension 3 but catalogue embeddings of shape \\(5, 2\\)"):
        retrieval.rank_catalogue(np.ones((1, 3)), FIVE, FIVE_IDS, **BEST_PHOTO)
    with pytest.raises(ValueError, match="4 catalogue ids for 5"):
        retrieval.rank_catalogue(at(0), FIVE, FIVE_IDS[:4], **BEST_PHOTO)
    with pytest.raises(ValueError, match="unknown aggregate 'mean'; expected one of max, mean_top_k"):
        retrieval.rank_catalogue(at(0), FIVE, FIVE_IDS, aggregate="mean", top_k=1)
    with pytest.raises(ValueError, match="top_k"):
        retrieval.rank_catalogue(at(0), FIVE, FIVE_IDS, aggregate="mean_top_k", top_k=0)


def test_no_queries_give_no_candidates():
    candidates = retrieval.rank_catalogue(np.zeros((0, 2)), FIVE, FIVE_IDS, **BEST_PHOTO)
    assert candidates.ids == [] and candidates.top.shape == (0, 4) and candidates.own.shape == (0,)


@pytest.mark.parametrize("aggregate, top_k", [("max", 1), ("mean_top_k", 3)])
def test_blocks_of_queries_give_the_same_answers_as_one_block(aggregate, top_k):
    rng = np.random.default_rng(7)
    catalogue = rng.standard_normal((600, 16))
    ids = [f"w_{i:03d}" for i in rng.integers(0, 90, 600)] + ["new_whale"] * 10
    catalogue = np.vstack([catalogue, rng.standard_normal((10, 16))])
    query = rng.standard_normal((50, 16))
    whole = retrieval.rank_catalogue(query, catalogue, ids, aggregate=aggregate, top_k=top_k, block_size=1024)
    blocks = retrieval.rank_catalogue(query, catalogue, ids, aggregate=aggregate, top_k=top_k, block_size=7)
    assert blocks.ids == whole.ids
    np.testing.assert_allclose(blocks.top, whole.top, rtol=1e-6)
    # and the scores are what they say: each candidate's best (or mean of best) similarity
    unit = retrieval.normalise(catalogue)
    ids = np.array(ids)
    for row, (names, scores) in enumerate(zip(whole.ids, whole.top)):
        similarities = unit @ retrieval.normalise(query[row:row + 1])[0]
        for name, score in zip(names, scores):
            best = np.sort(similarities[ids == name])[::-1][:top_k]
            assert score == pytest.approx(best.mean(), abs=1e-5)


def test_the_threshold_sweep_picks_the_threshold_with_the_best_map5():
    # Near "a" (0.985); an unknown whale (a 0.616, b 0.469, c 0.309, d 0.139); near "b" (0.999).
    query = at(0, -42, 22)
    truths = ["a", "new_whale", "b"]
    candidates = retrieval.rank_catalogue(query, FIVE, FIVE_IDS, **BEST_PHOTO)
    assert [row[0] for row in candidates.ids] == ["a", "a", "b"]
    best, curve = sweep_new_whale_threshold(candidates, truths, threshold_grid(0.0, 1.0, 0.25))
    # new_whale climbs for the unknown whale: fifth, fourth, second, first; at 1 it is first everywhere.
    np.testing.assert_allclose(curve["map5"], [(2 + 1 / 5) / 3, (2 + 1 / 4) / 3, (2 + 1 / 2) / 3, 1.0, 2 / 3])
    assert best == 0.75 and curve["chosen"].tolist() == [False, False, False, True, False]


def test_an_added_individual_changes_the_answers_of_its_photos_only():
    catalogue, ids = at(0, 10, 20, 30, 40, 50), ["a", "b", "c", "d", "e", "f"]
    query = at(5, 178, 25, 45)
    before = answers(query, catalogue, ids, 0.5)
    catalogue, ids = retrieval.extend_catalogue(catalogue, ids, at(180, 182), ["newcomer", "newcomer"])
    assert catalogue.shape == (8, 2) and ids[-2:] == ["newcomer", "newcomer"]
    after = answers(query, catalogue, ids, 0.5)
    assert before[1] == ["new_whale", "f", "e", "d", "c"]
    assert after[1] == ["newcomer", "new_whale", "f", "e", "d"]
    assert [after[i] for i in (0, 2, 3)] == [before[i] for i in (0, 2, 3)]


def test_adding_to_the_catalogue_checks_what_is_added():
    with pytest.raises(ValueError, match="dimension 3 for a catalogue of dimension 2"):
        retrieval.extend_catalogue(FIVE, FIVE_IDS, np.ones((1, 3)), ["x"])
    with pytest.raises(ValueError, match="1 new ids for 2 new embeddings"):
        retrieval.extend_catalogue(FIVE, FIVE_IDS, at(0, 1), ["x"])
    with pytest.raises(ValueError, match="new ids must be strings"):
        retrieval.extend_catalogue(FIVE, FIVE_IDS, at(0), [7])


def test_normalised_rows_have_unit_length_and_zero_rows_stay_zero():
    unit = retrieval.normalise(np.array([[3.0, 4.0], [0.0, 0.0], [1e30, 1e30]]))
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]], rtol=1e-6)
    with pytest.raises(ValueError, match="2-D array"):
        retrieval.normalise(np.ones(3))
    with pytest.raises(ValueError, match="1 embeddings hold NaN or infinite values.*rows \\[1\\]"):
        retrieval.normalise(np.array([[1.0, 0.0], [np.nan, 1.0]]))


def test_retrieval_imports_without_tensorflow():
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow_scripts")}
    check = ("import sys; import whaleid.methods.metric_learning.retrieval, whaleid.identification.answers, "
             "whaleid.io.tables; "
             "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=REPO)
