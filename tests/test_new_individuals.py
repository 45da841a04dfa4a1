"""New individuals proposed from the survey itself (methods.local.new_individuals): test photos
answered new_whale that match each other surely are grouped, never decided."""

import numpy as np
import pandas as pd
import pytest

from whaleid.data.links import linked_groups
from whaleid.methods.local.new_individuals import PROPOSED_COLUMNS, propose


def test_linked_items_form_one_group_through_a_chain_and_the_others_stay_alone():
    groups = linked_groups(7, np.array([0, 1, 5, 6]), np.array([1, 2, 4, 4]))
    # 0-1-2 a chain, 4-5-6 through 4, 3 alone; numbered by each group's first item
    assert groups.tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert linked_groups(3, np.array([], int), np.array([], int)).tolist() == [0, 1, 2]


def test_a_link_to_an_item_that_is_not_there_is_an_error():
    with pytest.raises(ValueError, match="a link of items 1 and 3, of 3"):
        linked_groups(3, np.array([1]), np.array([3]))


IMAGES = np.array([f"t{n}.jpg" for n in range(8)])
# Query 2 sees 3 surely; 3 and 4 see each other, each way once; 5 sees 6 less surely, and 6
# sees 7 surely, so 5-6-7 is a group once 5-6 passes; 1 sees the catalogue's w1 surely, which
# proposes nothing; 0 sees nobody.
PROBABILITIES = {(2, 3): 0.99, (3, 2): 0.40, (3, 4): 0.97, (4, 3): 0.995, (5, 6): 0.96, (6, 7): 0.999,
                 (1, "w1"): 0.999}


class Survey:
    """`match`: each query's pairs by `PROBABILITIES`, against the queries added under their
    own ids; records what it was asked. `rank`: the pairs as they are (one pair an individual)."""

    def __init__(self):
        self.asked = []

    def __call__(self, added, ids, queries):
        self.asked.append((added.tolist(), ids.tolist(), queries.tolist()))
        id_of = dict(zip(added.tolist(), ids.tolist()))
        rows = [{"query": query, "id": id_of.get(other, other), "probability": probability}
                for (query, other), probability in PROBABILITIES.items() if query in queries]
        return pd.DataFrame(rows)

    @staticmethod
    def rank(pairs):
        return pairs


def test_photos_that_match_each_other_surely_are_proposed_as_one_individual_each_way_counted_once():
    survey = Survey()
    queries = np.arange(1, 8)
    table = propose(queries, IMAGES, match=survey, rank=Survey.rank, accept=0.98)
    # each query added as an individual of its own, and asked against all
    assert survey.asked == [(queries.tolist(), [f"proposed:t{n}.jpg" for n in queries], queries.tolist())]
    assert list(table.columns) == PROPOSED_COLUMNS
    # 3-4 at 0.97 one way and 0.995 the other: linked at its best; 5-6 at 0.96 is not linked
    assert table.to_dict("records") == [
        {"image": "t2.jpg", "group": 1, "size": 3, "linked_to": "t3.jpg", "probability": 0.99},
        {"image": "t3.jpg", "group": 1, "size": 3, "linked_to": "t4.jpg", "probability": 0.995},
        {"image": "t4.jpg", "group": 1, "size": 3, "linked_to": "t3.jpg", "probability": 0.995},
        {"image": "t6.jpg", "group": 2, "size": 2, "linked_to": "t7.jpg", "probability": 0.999},
        {"image": "t7.jpg", "group": 2, "size": 2, "linked_to": "t6.jpg", "probability": 0.999}]


def test_groups_are_numbered_largest_first_then_by_their_first_photo():
    table = propose(np.arange(1, 8), IMAGES, match=Survey(), rank=Survey.rank, accept=0.95)
    assert table.groupby("group")["image"].apply(list).to_dict() == {
        1: ["t2.jpg", "t3.jpg", "t4.jpg"], 2: ["t5.jpg", "t6.jpg", "t7.jpg"]}
    # 6-7 comes first among the queries, but 2-3-4 is larger
    table = propose(np.array([6, 7, 2, 3, 4]), IMAGES, match=Survey(), rank=Survey.rank, accept=0.98)
    assert table.groupby("group")["image"].apply(list).to_dict() == {
        1: ["t2.jpg", "t3.jpg", "t4.jpg"], 2: ["t6.jpg", "t7.jpg"]}


def test_nothing_is_proposed_below_the_threshold_or_for_fewer_than_two_photos():
    survey = Survey()
    assert propose(np.arange(1, 8), IMAGES, match=survey, rank=Survey.rank, accept=1.0).empty
    assert propose(np.array([3]), IMAGES, match=survey, rank=Survey.rank, accept=0.5).empty
    assert len(survey.asked) == 1  # one photo: nothing to match it with
    assert list(propose(np.array([], int), IMAGES, match=survey, rank=Survey.rank, accept=0.5).columns) == \
        PROPOSED_COLUMNS
