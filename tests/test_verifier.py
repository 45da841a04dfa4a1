"""The local method's verifier and the calibrations: what the trees learn from match statistics,
probabilities whose frequencies hold on held-out pairs, and rankings that calibration never ties."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from whaleid.identification.calibration import (
    ISOTONIC_MIN_PAIRS,
    Calibration,
    expected_calibration_error,
    fit_calibration,
    reliability,
)
from whaleid.methods.local.pooling import individual_scores
from whaleid.methods.local.verifier import (
    FEATURES,
    Verifier,
    fold_answers,
    individual_calibrations,
    survey_catalogue,
    train_verifier,
)
from whaleid.settings import VerifierSettings

SETTINGS = VerifierSettings.defaults()


def synthetic_pairs(n_queries: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Verified pairs of `n_queries` queries, ten individuals' photos each, as a repeated
    texture (barnacles, a callosity's rough skin) makes them: the right individual's photo has
    a moderate count of distinctive inliers spread over the pattern; half the wrong ones have
    more, bunched in one spot and ambiguous (high ratio-test distances); the rest a few chance
    inliers. Inliers alone rank them badly."""
    rng = np.random.default_rng(seed)
    rows, asked = [], []
    for query in range(n_queries):
        known = rng.random() < 0.8
        for rank in range(10):
            same = known and rank == 0
            texture = not same and rng.random() < 1 / 2
            inliers = rng.poisson(14 if same else 20 if texture else 3)
            cover = rng.uniform(0.15, 0.5) if same else rng.uniform(0.0, 0.04)
            ratio = rng.uniform(0.45, 0.7) if same else rng.uniform(0.68, 0.8)
            rows.append({"query": query, "id": f"w{query}_{rank}" if not same else f"w{query}", "individual": rank,
                         "shortlist_rank": int(rng.integers(10)), "individual_votes": rng.uniform(1, 5),
                         "photo_votes": rng.uniform(1, 5), "matches": inliers + rng.poisson(10), "inliers": inliers,
                         "foreground_inliers": float(inliers),  # keypoints unweighed
                         "guided_matches": inliers + rng.poisson(6 if same else 1),
                         "ratio_q10": ratio - 0.1, "ratio_q50": ratio, "ratio_q90": min(ratio + 0.1, 0.8),
                         "query_cover": cover, "photo_cover": cover * rng.uniform(0.8, 1.2),
                         "scale": rng.uniform(0.8, 1.2), "rotation": rng.normal(0, 5),
                         "query_keypoints": 300, "photo_keypoints": 300, "same": same})
        asked.append({"query": query, "image": f"q{query}.jpg", "id": f"w{query}" if known else "new_whale",
                      "fold": 0, "catalogue_individuals": 50, "known": known})
    pairs = pd.DataFrame(rows)
    pairs["inlier_share"] = pairs["inliers"] / pairs["matches"].clip(lower=1)
    pairs["foreground_share"] = 1.0
    pairs["guided_foreground"] = pairs["guided_matches"].astype(float)
    pairs["individual_vote_share"] = pairs["individual_votes"] / 5
    pairs["photo_vote_share"] = pairs["photo_votes"] / 5
    best = pairs.groupby("query")["inliers"].transform("max")
    pairs["inlier_gap"] = pairs["inliers"] - best
    pairs["log_scale"] = np.abs(np.log(pairs["scale"]))
    return pairs, pd.DataFrame(asked)


@pytest.fixture(scope="module")
def trained():
    pairs, asked = synthetic_pairs(400, seed=0)
    verifier, held_out, out_of_fold = train_verifier(pairs, asked, SETTINGS, n_jobs=2)
    return pairs, asked, verifier, held_out, out_of_fold


def test_the_verifier_sees_through_inliers_that_a_repeated_texture_piles_up(trained):
    _, _, verifier, _, _ = trained
    pairs, _ = synthetic_pairs(300, seed=1)  # queries it never learned from
    same = pairs["same"].to_numpy()
    by_inliers = roc_auc_score(same, pairs["inliers"])
    by_verifier = roc_auc_score(same, verifier.probability(pairs))
    assert by_inliers < 0.65  # 0.58 observed: the texture's pairs outcount the right ones
    assert by_verifier > 0.97, (by_inliers, by_verifier)
    # and ranking by it puts the right individual first where raw counts rarely do
    ranked = individual_scores(pairs.assign(probability=verifier.probability(pairs)), "verifier", "max")
    counted = individual_scores(pairs, "inliers")
    truth = pairs[pairs["same"]].set_index("query")["id"]
    first = {name: (table[table["rank"] == 0].set_index("query")["id"].reindex(truth.index) == truth).mean()
             for name, table in (("verifier", ranked), ("inliers", counted))}
    assert first["verifier"] > 0.9 and first["inliers"] < 0.1, first  # 0.03 by inliers observed


def test_its_probabilities_hold_on_held_out_pairs(trained):
    pairs, _, verifier, held_out, _ = trained
    assert verifier.calibration.method == "isotonic"  # hundreds of pairs of each kind
    # each pair scored by trees and a calibration that did not learn from its query's pairs
    assert expected_calibration_error(held_out, pairs["same"]) < 0.03
    fresh, _ = synthetic_pairs(600, seed=2)
    assert expected_calibration_error(verifier.probability(fresh), fresh["same"]) < 0.05


def test_an_individual_not_shortlisted_gets_the_share_of_such_individuals_that_were_the_query_s():
    pairs = pd.DataFrame({"query": [0, 0, 1, 1, 2], "id": ["a", "b", "a", "c", "d"], "individual_votes": 1.0,
                          "inliers": [9, 1, 2, 1, 3], "probability": [0.9, 0.1, 0.2, 0.1, 0.4]})
    asked = pd.DataFrame({"query": [0, 1, 2, 3], "id": ["a", "b", "new_whale", "e"], "catalogue_individuals": 10,
                          "known": [True, True, False, True]})
    _, absent = individual_calibrations(pairs, asked, "sigmoid")
    # query 0: a shortlisted; 1: b known, not shortlisted (missed); 2: new_whale; 3: e known, no
    # pairs at all (missed). Not shortlisted: 8 + 8 + 9 + 10 individuals.
    assert absent == pytest.approx(2 / 35)


def test_each_photo_asked_gets_its_best_answers_out_of_fold_by_each_pooling():
    pairs = pd.DataFrame({"query": [0, 0, 0, 1, 1, 2], "id": ["a", "b", "b", "a", "c", "d"], "individual_votes": 1.0,
                          "inliers": [9, 5, 5, 2, 1, 3], "probability": [0.6, 0.5, 0.5, 0.2, 0.1, 0.4]})
    asked = pd.DataFrame({"query": [0, 1, 2, 3], "image": ["q0", "q1", "q2", "q3"], "id": ["a", "c", "new_whale", "e"],
                          "fold": 0, "catalogue_individuals": 10, "known": [True, True, False, True]})
    as_it_is = Calibration("isotonic", np.array([0.0, 1.0]), np.array([0.0, 1.0]), 1.0, 0.0, 0.5, 1.0)
    answers = fold_answers(pairs, asked, {"max": as_it_is, "noisy_or": as_it_is})
    answers = answers.set_index(["pooling", "image", "rank"])
    # q0 and q1 two individuals each, q2 one, q3 none: one row
    assert len(answers) == 12
    # by its best photo, b (0.5) is below a (0.6); two photos at 0.5 pooled as noisy-or, 0.75, above it
    assert answers.loc[("max", "q0", 0), "answer"] == "a" and answers.loc[("max", "q0", 0), "right"]
    assert answers.loc[("max", "q0", 1), "answer"] == "b" and not answers.loc[("max", "q0", 1), "right"]
    assert answers.loc[("noisy_or", "q0", 0), "answer"] == "b" and not answers.loc[("noisy_or", "q0", 0), "right"]
    assert answers.loc[("noisy_or", "q0", 0), "probability"] == pytest.approx(0.75, abs=1e-3)
    assert answers.loc[("noisy_or", "q0", 1), "answer"] == "a" and answers.loc[("noisy_or", "q0", 1), "right"]
    # q1's own, c, second
    assert answers.loc[("max", "q1", 0), "answer"] == "a" and not answers.loc[("max", "q1", 0), "right"]
    assert answers.loc[("max", "q1", 1), "answer"] == "c" and answers.loc[("max", "q1", 1), "right"]
    assert not answers.loc[("max", "q2", 0), "right"]  # a new_whale photo is never answered right
    assert answers.loc[("max", "q3", 0), "answer"] == "" and np.isnan(answers.loc[("max", "q3", 0), "probability"])
    assert answers.loc[("max", "q3", 0), "known"] and not answers.loc[("max", "q2", 0), "known"]


def test_a_fit_photo_is_answered_against_as_many_photos_of_its_own_as_a_catalogue_individual_has():
    # 6 individuals: one of 8 photos (the query's), three of 1, one of 2, one of 4; and new whales
    catalogue = np.array(["own"] * 8 + ["a", "b", "c", "d", "d", "e", "e", "e", "e", "new_whale", "new_whale"])
    kept_of_own = []
    for seed in range(600):
        keep = survey_catalogue(catalogue, "own", np.random.default_rng(seed))
        assert keep[catalogue != "own"].all()  # every other photo, new whales' too, stays
        kept_of_own.append(int(keep[catalogue == "own"].sum()))
    # as many as an individual drawn at random has: 1 (three of six), 2, 4 or 8 (one of six each)
    counts = np.bincount(kept_of_own, minlength=9)
    assert set(np.flatnonzero(counts)) == {1, 2, 4, 8}
    assert counts[1] / 600 == pytest.approx(0.5, abs=0.07)
    assert counts[8] / 600 == pytest.approx(1 / 6, abs=0.05)
    # which of its own photos stay is drawn too
    singles = [np.flatnonzero(survey_catalogue(catalogue, "own", np.random.default_rng(seed))[:8])
               for seed in range(600) if kept_of_own[seed] == 1]
    assert len({int(s[0]) for s in singles}) == 8


def test_a_photo_of_an_individual_the_catalogue_lacks_or_a_new_whale_keeps_the_whole_catalogue():
    catalogue = np.array(["a", "a", "b", "new_whale"])
    for own in ("z", "new_whale"):
        assert survey_catalogue(catalogue, own, np.random.default_rng(0)).all()
    # never more of its own than it has: drawn 2 (a's count) or 1 (b's), a keeps at most its 2
    for seed in range(50):
        assert 1 <= survey_catalogue(catalogue, "a", np.random.default_rng(seed))[:2].sum() <= 2


def test_the_out_of_fold_answers_most_sure_are_the_rightest(trained):
    pairs, asked, verifier, _, out_of_fold = trained
    answers = fold_answers(pairs.assign(probability=out_of_fold), asked, verifier.individuals).query(
        "pooling == 'max' and rank == 0")
    answers = answers.dropna(subset=["probability"]).sort_values("probability", ascending=False)
    sure, unsure = answers.head(len(answers) // 4), answers.tail(len(answers) // 4)
    assert sure["right"].mean() > 0.9 > unsure["right"].mean(), (sure["right"].mean(), unsure["right"].mean())


def test_a_saved_verifier_loads_and_scores_the_same(trained, tmp_path):
    pairs, _, verifier, _, _ = trained
    verifier.save(tmp_path / "model.joblib")
    loaded = Verifier.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.probability(pairs), verifier.probability(pairs))
    assert loaded.absent == verifier.absent and set(loaded.individuals) == {"max", "noisy_or"}


def test_a_verifier_saved_with_other_features_is_refused(trained, tmp_path):
    import joblib

    _, _, verifier, _, _ = trained
    verifier.save(tmp_path / "model.joblib")
    saved = joblib.load(tmp_path / "model.joblib")
    joblib.dump({**saved, "features": FEATURES[:-1]}, tmp_path / "old.joblib")
    with pytest.raises(ValueError, match="train it again"):
        Verifier.load(tmp_path / "old.joblib")


def test_too_few_pairs_of_one_individual_are_refused():
    pairs, asked = synthetic_pairs(20, seed=3)
    pairs["same"] = False
    with pytest.raises(ValueError, match="too few to train a verifier"):
        train_verifier(pairs, asked, SETTINGS, n_jobs=1)


# ------------------------------------------------------------------------------ calibration


def scores_with_known_probability(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores whose true P(same) is a known, non-logistic curve, and draws from it."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 30, n)
    probability = np.clip((scores / 30) ** 2, 0, 1)
    return scores, probability, rng.random(n) < probability


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibrated_scores_match_the_observed_frequency_of_held_out_pairs(method):
    scores, _, same = scores_with_known_probability(6000, seed=0)
    calibration = fit_calibration(scores, same, method)
    held_scores, truth, held_same = scores_with_known_probability(6000, seed=1)
    predicted = calibration(held_scores)
    table = reliability(predicted, held_same)
    assert expected_calibration_error(predicted, held_same) < (0.03 if method == "isotonic" else 0.06)
    assert (table["predicted"] - table["observed"]).abs().max() < (0.06 if method == "isotonic" else 0.12)
    if method == "isotonic":  # close to the true curve, not only on average
        assert np.abs(predicted - truth).mean() < 0.03


def test_calibration_never_ties_scores_the_raw_score_told_apart():
    """Isotonic regression maps ranges of scores to one step; ranking by the steps would tie
    candidates. The calibration stays strictly increasing, moving a probability by at most
    a thousandth."""
    scores, _, same = scores_with_known_probability(3000, seed=4)
    calibration = fit_calibration(scores, same, "isotonic")
    grid = np.linspace(-5, 35, 5001)
    assert (np.diff(calibration(grid)) > 0).all()
    steps = np.interp(grid, calibration.x, calibration.y)
    assert len(np.unique(steps)) < 200 and np.abs(calibration(grid) - steps).max() <= 1e-3
    assert Calibration.from_dict(calibration.to_dict())(grid).tolist() == calibration(grid).tolist()


def test_auto_calibration_is_isotonic_only_with_enough_pairs_of_each_kind():
    scores, _, same = scores_with_known_probability(4000, seed=5)
    assert fit_calibration(scores, same).method == "isotonic"
    few = np.flatnonzero(same)[:ISOTONIC_MIN_PAIRS - 1]
    keep = np.r_[few, np.flatnonzero(~same)]
    assert fit_calibration(scores[keep], same[keep]).method == "sigmoid"
    with pytest.raises(ValueError, match="both kinds"):
        fit_calibration(scores, np.zeros(len(scores), bool))
