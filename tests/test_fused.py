"""The fused method on hand-made scores: the local probabilities, the embedding's calibration
pairs, the ranking, and the weight and threshold chosen on validation."""

import numpy as np
import pandas as pd
import pytest

from whaleid.identification.answers import final_answers
from whaleid.identification.search import Queries
from whaleid.methods.fused import (
    SearchScores,
    choose_weight,
    embedding_calibration,
    fuse,
    leave_one_out_scores,
    local_probability_matrix,
    middle_of_best,
)
from whaleid.methods.metric_learning.retrieval import individual_scores, normalise, rank_catalogue

INDIVIDUALS = ["w_a", "w_b", "w_c", "w_d", "w_e"]


def shortlists(rows):
    return pd.DataFrame(rows, columns=["image", "id", "probability"])


def test_local_probabilities_are_the_shortlists_and_the_absent_probability_elsewhere():
    table = shortlists([("q1", "w_b", 0.8), ("q1", "w_a", 0.3), ("q2", "w_e", 0.6), ("q2", "w_c", 0.004),
                        ("q2", "w_d", 0.002)])
    probabilities = local_probability_matrix(table, ["q1", "q2", "q3"], INDIVIDUALS, absent=0.01)
    expected = np.full((3, 5), 0.01)
    expected[0, 1], expected[0, 0], expected[1, 4] = 0.8, 0.3, 0.6
    expected[1, 2] = expected[1, 3] = 0.01 * 1.001  # shortlisted, below absent: floored
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    # and still in the local method's order, above every individual not shortlisted
    assert probabilities[1, 4] > probabilities[1, 2] > probabilities[1, 3] > probabilities[1, 0]


def test_local_probabilities_refuse_unknown_queries_and_individuals():
    with pytest.raises(ValueError, match="not queries here"):
        local_probability_matrix(shortlists([("q9", "w_a", 0.5)]), ["q1"], INDIVIDUALS, 0.01)
    with pytest.raises(ValueError, match="catalogue lacks"):
        local_probability_matrix(shortlists([("q1", "w_zz", 0.5)]), ["q1"], INDIVIDUALS, 0.01)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        local_probability_matrix(shortlists([]), ["q1"], INDIVIDUALS, 2.0)


def test_leave_one_out_scores_never_count_a_photo_as_its_own_match():
    rng = np.random.default_rng(1)
    embeddings = normalise(rng.standard_normal((9, 6)).astype(np.float32))
    ids = ["a", "a", "a", "b", "b", "c", "new_whale", "d", "d"]
    for aggregate, top_k in (("max", 1), ("mean_top_k", 2)):
        individuals, scores, present = leave_one_out_scores(embeddings, ids, aggregate=aggregate, top_k=top_k)
        assert individuals.tolist() == ["a", "b", "c", "d"]
        similarities = embeddings @ embeddings.T
        # photo 0 against a: photos 1 and 2 only
        own = np.sort(similarities[0, [1, 2]])[::-1]
        assert scores[0, 0] == pytest.approx(own[0] if aggregate == "max" else own.mean(), rel=1e-5)
        # c has one photo: absent for itself, present for everyone else
        assert not present[5, 2] and present[np.arange(9) != 5, 2].all()
        # the new_whale photo asks like any other, and is no one's match
        assert present[6].all()
        _, catalogue_scores = individual_scores(embeddings[[6]], np.delete(embeddings, 6, axis=0),
                                                np.delete(ids, 6).tolist(), aggregate=aggregate, top_k=top_k)
        np.testing.assert_allclose(scores[6], catalogue_scores[0], rtol=1e-5)


def test_fusing_a_perfect_method_with_a_random_one_ranks_like_the_perfect_one():
    """The weight chosen on validation keeps the perfect method's ranking on test: every known
    test photo's individual first, and the unknown ones answered new_whale."""
    rng = np.random.default_rng(3)
    n_individuals, n_validation, n_test = 12, 40, 30
    individuals = np.array([f"w_{i:02d}" for i in range(n_individuals)])

    def photos(n, prefix):
        truth = rng.integers(-1, n_individuals, n)  # -1: an unknown individual
        return truth, [f"{prefix}{i}" for i in range(n)]

    def scores(truth):
        perfect = np.full((len(truth), n_individuals), 0.01)
        known = truth >= 0
        perfect[np.flatnonzero(known), truth[known]] = 0.95
        return SearchScores(individuals, perfect, rng.random((len(truth), n_individuals)))

    validation_truth, validation_images = photos(n_validation, "v")
    test_truth, test_images = photos(n_test, "t")
    truth_ids = [individuals[t] if t >= 0 else "new_whale" for t in validation_truth]
    fit = pd.DataFrame({"image": [f"f{i}" for i in range(n_individuals)], "id": individuals, "subset": "fit",
                        "truth": individuals, "phash": ["f" * 16] * n_individuals,
                        "content_hash": [f"z{i}" for i in range(n_individuals)]})
    validation = pd.DataFrame({"image": validation_images, "id": truth_ids, "subset": "validation", "truth": truth_ids,
                               "phash": ["0" * 16] * n_validation, "content_hash": validation_images})
    test = pd.DataFrame({"image": test_images, "phash": ["0f" * 8] * n_test, "content_hash": test_images})
    queries = Queries(pd.concat([fit, validation], ignore_index=True), test)
    weights = [i / 10 for i in range(11)]
    answers, table, weight = choose_weight(queries, scores(validation_truth), scores(test_truth), weights, [0],
                                           [i / 20 for i in range(21)])
    assert weight >= 0.5 and table.loc[table["chosen"], "map5"].iloc[0] == pytest.approx(1.0)
    expected = [individuals[t] if t >= 0 else "new_whale" for t in test_truth]
    assert [row[0] for row in answers.test["answers"]] == expected


def test_fusion_weight_moves_the_ranking_from_one_method_to_the_other():
    local = np.array([[0.0, 0.9, 0.0, 0.0, 0.0]], np.float32)
    similarity = np.array([[0.8, 0.1, 0.5, 0.4, 0.3]], np.float32)
    assert fuse(local, similarity, INDIVIDUALS, 0.0).ids == [["w_a", "w_c", "w_d", "w_e"]]
    only_local = fuse(local, similarity, INDIVIDUALS, 1.0)
    # keypoints alone: the verified first, the rest in the embedding's order
    assert only_local.ids == [["w_b", "w_a", "w_c", "w_d"]]
    np.testing.assert_allclose(only_local.top[0, 0], 0.9, atol=1e-5)
    half = fuse(local, similarity, INDIVIDUALS, 0.5)
    assert half.ids == [["w_b", "w_a", "w_c", "w_d"]]
    np.testing.assert_allclose(half.top[0], [0.5, 0.4, 0.25, 0.2], atol=1e-6)
    assert np.isneginf(half.own).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fuse(local, similarity, INDIVIDUALS, 1.5)


def test_each_querys_candidates_list_the_fused_and_both_inputs_probabilities():
    local = np.array([[0.0, 0.9, 0.0, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0, 0.6]])
    embedding = np.array([[0.8, 0.1, 0.5, 0.4, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5]])
    table = SearchScores(np.array(INDIVIDUALS), local, embedding).candidates(["q1.jpg", "q2.jpg"], 0.5)
    assert list(table.columns) == ["image", "rank", "id", "probability", "local", "embedding"]
    assert table["image"].tolist() == ["q1.jpg"] * 4 + ["q2.jpg"] * 4 and table["rank"].tolist() == [0, 1, 2, 3] * 2
    first = table[table["image"] == "q1.jpg"]
    assert first["id"].tolist() == ["w_b", "w_a", "w_c", "w_d"]
    np.testing.assert_allclose(first["probability"], [0.5, 0.4, 0.25, 0.2])
    np.testing.assert_allclose(first["local"], [0.9, 0, 0, 0])
    np.testing.assert_allclose(first["embedding"], [0.1, 0.8, 0.5, 0.4])
    assert table.loc[table["image"] == "q2.jpg", "id"].iloc[0] == "w_e"  # 0.55


def test_weight_and_threshold_are_chosen_together_on_validation():
    # Validation: the embedding is right for v1 and v2, the keypoints for v3 and v4; only a
    # mixture gets all four first. v5 is unknown (truth new_whale): everything scores low.
    validation = pd.DataFrame({"image": ["v1", "v2", "v3", "v4", "v5"], "id": ["w_a", "w_b", "w_c", "w_d", "new_whale"],
                               "subset": "validation", "truth": ["w_a", "w_b", "w_c", "w_d", "new_whale"],
                               "phash": ["0" * 16] * 5, "content_hash": list("abcde")})
    similarity = np.array([[0.9, 0.3, 0.6, 0.1, 0.1],
                           [0.2, 0.9, 0.1, 0.6, 0.1],
                           [0.5, 0.1, 0.45, 0.1, 0.1],
                           [0.1, 0.5, 0.1, 0.45, 0.1],
                           [0.2, 0.2, 0.2, 0.2, 0.25]], np.float32)
    local = np.zeros_like(similarity)
    local[0, 2], local[1, 3] = 0.2, 0.2  # weak keypoint matches to the wrong ones
    local[2, 2], local[3, 3] = 0.7, 0.7  # strong, right ones
    # Each catalogue's hashes differ from its queries', so no duplicate is answered first: the
    # validation photos are matched against the fit photo, the test photos (scored as v1 and
    # v2) against all of train.
    fit = pd.DataFrame({"image": ["f1"], "id": ["w_a"], "subset": "fit", "truth": ["w_a"], "phash": ["f" * 16],
                        "content_hash": ["z"]})
    test = pd.DataFrame({"image": ["t1", "t2"], "phash": ["0f" * 8] * 2, "content_hash": ["x", "y"]})
    queries = Queries(pd.concat([fit, validation], ignore_index=True), test)
    individuals = np.array(INDIVIDUALS)
    fused, table, weight = choose_weight(queries, SearchScores(individuals, local, similarity),
                                         SearchScores(individuals, local[:2], similarity[:2]), [0.0, 0.5, 1.0], [0],
                                         [0.0, 0.3, 0.35, 0.5])
    assert weight == 0.5 and table["chosen"].tolist() == [False, True, False]
    assert table.loc[table["weight"] == 0.5, "map5"].iloc[0] == pytest.approx(1.0)
    map5 = table.set_index("weight")["map5"]
    assert map5[0.0] < 1 and map5[1.0] < 1
    # fused v5 scores at most 0.125: the threshold puts new_whale first there, and only there
    assert fused.chosen in (0.3, 0.35)
    assert fused.validation["image"].tolist() == ["v1", "v2", "v3", "v4", "v5"]
    assert [row[0] for row in fused.validation["answers"]] == ["w_a", "w_b", "w_c", "w_d", "new_whale"]
    assert fused.test["image"].tolist() == ["t1", "t2"]
    assert [row[0] for row in fused.test["answers"]] == ["w_a", "w_b"]
    assert fused.curve["chosen"].sum() == 1
    expected = final_answers(fuse(local, similarity, INDIVIDUALS, 0.5), fused.chosen)
    assert fused.validation["answers"].tolist() == expected


def test_individual_scores_rank_as_rank_catalogue_does():
    rng = np.random.default_rng(0)
    catalogue = normalise(rng.standard_normal((40, 8)).astype(np.float32))
    ids = [f"w_{i % 9}" for i in range(40)]
    query = normalise(rng.standard_normal((7, 8)).astype(np.float32))
    for aggregate, top_k in (("max", 1), ("mean_top_k", 3)):
        individuals, scores = individual_scores(query, catalogue, ids, aggregate=aggregate, top_k=top_k, block_size=3)
        assert individuals.tolist() == sorted(set(ids)) and scores.shape == (7, 9)
        ranked = rank_catalogue(query, catalogue, ids, aggregate=aggregate, top_k=top_k)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :4]
        assert individuals[best].tolist() == ranked.ids
        np.testing.assert_allclose(np.take_along_axis(scores, best, axis=1), ranked.top, rtol=1e-6)
    similarities = query @ catalogue.T
    photos_of_w3 = [i for i, name in enumerate(ids) if name == "w_3"]
    _, best_photo = individual_scores(query, catalogue, ids, aggregate="max", top_k=1)
    np.testing.assert_allclose(best_photo[:, 3], similarities[:, photos_of_w3].max(axis=1), rtol=1e-5)


def test_a_plateau_of_equal_scores_gives_its_middle_weight():
    assert middle_of_best([0.5, 0.9, 0.7]) == 1
    assert middle_of_best([0.92, 0.94, 1.0, 1.0, 1.0, 1.0, 1.0]) == 4
    assert middle_of_best([1.0, 1.0, 1.0, 1.0, 0.9]) == 1  # the lower middle of an even run
    assert middle_of_best([1.0, 0.9, 1.0, 1.0, 1.0, 0.8]) == 3  # the longest run of the best
    assert middle_of_best([1.0, 0.9, 1.0]) == 0  # runs of one: the first
    with pytest.raises(ValueError):
        middle_of_best([])


def test_an_embedding_of_one_photo_per_individual_is_calibrated_by_a_prior_with_a_warning(caplog):
    embeddings = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    ids = [f"w{n}" for n in range(30)]
    with caplog.at_level("WARNING"):
        calibration, pairs = embedding_calibration(embeddings, ids, aggregate="max", top_k=2, method="auto")
    assert "embedding calibration NOT FITTED" in caplog.text
    assert len(pairs) == 30 * 29 and not pairs["same"].any()
    # the score's ranking kept; wrong pairs' typical scores far from as likely as not
    scores = np.unique(pairs["score"].to_numpy())  # each pair twice: one photo asking, then the other
    assert (np.diff(calibration(scores)) > 0).all()
    mean, spread = pairs["score"].mean(), pairs["score"].std(ddof=0)
    np.testing.assert_allclose(calibration([mean, mean + 3 * spread]), [1 / (1 + np.exp(3)), 0.5])
