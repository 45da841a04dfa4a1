"""The local method's new_whale threshold chosen on the fit photos' out-of-fold answers, weighed
to validation's share of new whales (identification.fold_threshold)."""

import numpy as np
import pandas as pd
import pytest

from whaleid.evaluation.metrics import map_at_5
from whaleid.identification.answers import final_answers
from whaleid.identification.candidates import Candidates
from whaleid.identification.fold_threshold import can_weigh, fold_threshold, read_fold_answers, weighted_map5

# Four queries' best four (-1: nothing more verified): q0 known, its own first; q1 known, its own
# second; q2 new; q3 known, its own not among them.
PROBABILITIES = np.array([[0.9, 0.2, -1, -1], [0.6, 0.5, 0.1, -1], [0.7, 0.1, -1, -1], [0.3, -1, -1, -1]])
TRUTH_RANK = np.array([0, 1, -1, -1])
NEW = np.array([False, False, True, False])


def test_map5_of_each_threshold_weighs_the_new_queries_by_the_share_given():
    # threshold 0: new_whale after the verified ones; 0.55: after q0's first, before q1's first
    # two (q1's own then third); 0.8: first for q1 and q2
    known = np.array([(1 + 1 / 2 + 0) / 3, (1 + 1 / 3 + 0) / 3, (1 + 1 / 3 + 0) / 3])
    new = np.array([1 / 3, 1 / 2, 1])
    np.testing.assert_allclose(weighted_map5(PROBABILITIES, TRUTH_RANK, NEW, [0.0, 0.55, 0.8], 0.5),
                               0.5 * known + 0.5 * new)
    np.testing.assert_allclose(weighted_map5(PROBABILITIES, TRUTH_RANK, NEW, [0.0, 0.55, 0.8], 0.0), known)


def test_with_the_queries_own_share_of_new_it_is_the_map5_identification_answers_with():
    rng = np.random.default_rng(3)
    n = 300
    probabilities = -np.sort(-rng.uniform(0, 1, (n, 4)), axis=1)
    probabilities[rng.uniform(size=(n, 4)) < 0.2] = -1  # some verified fewer than four
    probabilities = -np.sort(-probabilities, axis=1)
    new = rng.uniform(size=n) < 0.3
    truth_rank = np.where(new, -1, rng.integers(-1, 4, n))
    ids = [[f"q{q}-{rank}" for rank in range(4)] for q in range(n)]
    truths = ["new_whale" if new[q] else ids[q][truth_rank[q]] if truth_rank[q] >= 0 else "someone else"
              for q in range(n)]
    candidates = Candidates(ids, probabilities, np.full(n, -np.inf))
    thresholds = np.linspace(0, 1, 11)
    expected = [map_at_5(final_answers(candidates, t), truths) for t in thresholds]
    np.testing.assert_allclose(weighted_map5(probabilities, truth_rank, new, thresholds, new.mean()), expected)


def fold_answers_table() -> pd.DataFrame:
    """`PROBABILITIES` as `verifier.fold_answers` writes them, with a photo nothing verified for
    (new_whale first at any threshold) and the other pooling's answers."""
    rows = []
    for query, (probabilities, own, new) in enumerate(zip(PROBABILITIES, TRUTH_RANK, NEW)):
        truth = "new_whale" if new else f"w{query}"
        for rank, probability in enumerate(probabilities[probabilities >= 0]):
            answer = truth if rank == own else f"x{query}{rank}"
            rows.append((f"q{query}.jpg", truth, not new, "max", rank, answer, probability, rank == own))
    rows.append(("nothing.jpg", "w9", True, "max", 0, "", np.nan, False))
    table = pd.DataFrame(rows, columns=["image", "id", "known", "pooling", "rank", "answer", "probability", "right"])
    return pd.concat([table, table.assign(pooling="noisy_or", probability=0.99)], ignore_index=True)


def test_the_threshold_is_the_best_of_the_weighted_curve_of_one_pooling(tmp_path):
    fold_answers_table().to_csv(tmp_path / "fold_answers.csv", index=False)
    answers = read_fold_answers(tmp_path / "fold_answers.csv")
    assert answers.loc[answers["image"] == "nothing.jpg", "answer"].tolist() == ["", ""]
    threshold, curve = fold_threshold(answers, "max", [0.0, 0.55, 0.8], 0.5)
    # the photo nothing verified for is a known one answered wrong at every threshold
    known = np.array([(1 + 1 / 2 + 0 + 0) / 4, (1 + 1 / 3 + 0 + 0) / 4, (1 + 1 / 3 + 0 + 0) / 4])
    np.testing.assert_allclose(curve["map5"], 0.5 * known + 0.5 * np.array([1 / 3, 1 / 2, 1]))
    assert threshold == 0.8 and curve["chosen"].tolist() == [False, False, True]
    # with no new whales to expect, new_whale is best put last: the first of equals
    assert fold_threshold(answers, "max", [0.0, 0.55, 0.8], 0.0)[0] == 0.0


def test_a_share_of_new_whales_the_queries_cannot_stand_for_is_refused():
    with pytest.raises(ValueError, match="no new individuals among the queries"):
        weighted_map5(PROBABILITIES, TRUTH_RANK, np.zeros(4, bool), [0.5], 0.2)
    with pytest.raises(ValueError, match="no known individuals"):
        weighted_map5(PROBABILITIES, np.full(4, -1), np.ones(4, bool), [0.5], 0.2)
    with pytest.raises(ValueError, match="no out-of-fold answers by pooling 'mean'"):
        fold_threshold(fold_answers_table(), "mean", [0.5], 0.2)
    # which identification checks first, to choose on validation instead
    answers = fold_answers_table()
    assert can_weigh(answers, 0.2) and can_weigh(answers, 0.0) and can_weigh(answers, 1.0)
    only_new = answers.assign(known=False)
    assert not can_weigh(only_new, 0.2) and can_weigh(only_new, 1.0)
    assert not can_weigh(answers.assign(known=True), 0.2) and can_weigh(answers.assign(known=True), 0.0)
