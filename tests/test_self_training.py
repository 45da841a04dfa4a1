"""Self-training (methods.local.self_training): a survey's photos answered surely join the
catalogue, the others are matched against them, round after round."""

import numpy as np
import pandas as pd
import pytest

from whaleid.methods.local.self_training import self_train


def pair(query: int, photo: str, individual: str, probability: float) -> dict:
    return {"query": query, "image": f"q{query}.jpg", "photo": photo, "id": individual, "probability": probability}


def rank(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each query's individuals by their best photo's probability, as `pooling.individual_scores` ranks them."""
    table = pairs.groupby(["query", "id"], as_index=False)["probability"].max()
    table = table.sort_values(["query", "probability"], ascending=[True, False], kind="stable")
    return table.assign(rank=table.groupby("query").cumcount())


# q0, q2, q5, q6 are answered surely (a, b, c, d); q4 too, but a person identified it; q1 and
# q3 are not. Against the survey's photos, q1 looks like q0 and q3 like q1: a chain of sightings.
CATALOGUE = pd.DataFrame([pair(0, "a.jpg", "a", 0.99), pair(1, "a.jpg", "a", 0.30), pair(2, "b.jpg", "b", 0.995),
                          pair(3, "c.jpg", "c", 0.20), pair(4, "e.jpg", "e", 0.999), pair(5, "c.jpg", "c", 0.97),
                          pair(6, "d.jpg", "d", 0.98), pair(7, "b.jpg", "b", 0.10)])
LOOKS_LIKE = {(1, 0): 0.99, (3, 1): 0.96, (7, 2): 0.40}
FIXED = np.array([False, False, False, False, True, False, False, False])


class Survey:
    """`match`: each query against the catalogue as before, and against the accepted photos by
    `LOOKS_LIKE`; records what it was asked, and which pairs it was told were checked before."""

    def __init__(self):
        self.asked, self.before = [], []

    def __call__(self, added: np.ndarray, ids: np.ndarray, queries: np.ndarray, before: pd.DataFrame) -> pd.DataFrame:
        self.asked.append((sorted(added.tolist()), sorted(queries.tolist())))
        self.before.append(sorted(zip(before["query"], before["photo"])))
        survey = pd.DataFrame([pair(query, f"q{photo}.jpg", individual, LOOKS_LIKE[query, photo])
                               for query in queries for photo, individual in zip(added, ids)
                               if (query, photo) in LOOKS_LIKE], columns=list(CATALOGUE.columns))
        return pd.concat([CATALOGUE[CATALOGUE["query"].isin(queries)], survey], ignore_index=True)


def test_each_round_accepts_the_sure_answers_and_matches_the_rest_against_them():
    survey = Survey()
    pairs, labels = self_train(CATALOGUE, 8, rank=rank, match=survey, accept=0.95, rounds=2, fixed=FIXED)
    assert labels.set_index("query")["round"].to_dict() == {0: 1, 2: 1, 5: 1, 6: 1, 1: 2}
    assert labels.set_index("query")["id"].to_dict() == {0: "a", 2: "b", 5: "c", 6: "d", 1: "a"}
    # the catalogue grows by the accepted photos; the queries asked again are those not yet
    # accepted, nor identified by a person
    assert survey.asked == [([0, 2, 5, 6], [1, 3, 7]), ([0, 1, 2, 5, 6], [3, 7])]
    # each time, the pairs those queries have so far, so that they need not be checked again
    assert survey.before == [[(1, "a.jpg"), (3, "c.jpg"), (7, "b.jpg")],
                             [(3, "c.jpg"), (7, "b.jpg"), (7, "q2.jpg")]]
    # two rounds: q3 matched q1 in the second, and is answered by it, but not accepted
    ranked = rank(pairs).query("rank == 0").set_index("query")
    assert ranked.loc[3, "id"] == "a" and ranked.loc[3, "probability"] == 0.96
    # q1 keeps the pairs it was accepted with, though it was not asked again; each query's
    # catalogue pairs once
    assert ((pairs["query"] == 1) & (pairs["photo"] == "q0.jpg")).sum() == 1
    assert not pairs.duplicated(["query", "photo"]).any()
    assert pairs["photo"].isin(CATALOGUE["photo"]).sum() == len(CATALOGUE)
    # q7 matched q2, b's accepted photo, better than b's catalogue photo, though not surely
    assert ranked.loc[7, "id"] == "b" and ranked.loc[7, "probability"] == 0.40


def test_a_photo_a_person_identified_is_never_pseudo_labelled():
    _, labels = self_train(CATALOGUE, 8, rank=rank, match=Survey(), accept=0.95, rounds=3, fixed=FIXED)
    assert 4 not in labels["query"].tolist()
    _, unfixed = self_train(CATALOGUE, 8, rank=rank, match=Survey(), accept=0.95, rounds=1)
    assert 4 in unfixed["query"].tolist()  # the same answer is accepted where no person decided


def test_rounds_stop_when_one_accepts_nothing_new():
    survey = Survey()
    _, labels = self_train(CATALOGUE, 8, rank=rank, match=survey, accept=0.95, rounds=10, fixed=FIXED)
    # round 3 accepts q3; round 4 accepts nothing and asks nothing
    assert labels["round"].max() == 3 and len(survey.asked) == 3
    assert self_train(CATALOGUE, 8, rank=rank, match=survey, accept=0.95, rounds=0)[1].empty
    with pytest.raises(ValueError, match="rounds must be 0 or more"):
        self_train(CATALOGUE, 8, rank=rank, match=survey, accept=0.95, rounds=-1)


def test_where_no_answer_is_sure_nothing_is_matched_again():
    survey = Survey()
    pairs, labels = self_train(CATALOGUE, 8, rank=rank, match=survey, accept=0.9999, rounds=3, fixed=FIXED)
    assert labels.empty and survey.asked == []
    pd.testing.assert_frame_equal(pairs, CATALOGUE)
