"""New individuals proposed from the survey itself: test photos that no catalogue individual
matched, but that match each other surely, proposed as photos of one new individual.

A survey photographs a new individual as it photographs a known one, several times: the scene
demo's unseen individuals come once or twice, a real survey's often more. Each such photo is
answered new_whale on its own, and a person deciding the review page would give each its own new
id unless they remember having seen the animal a hundred photos earlier. So the test photos
answered new_whale first are matched against each other (`propose`), each a catalogue photo of
an individual of its own, within the whole catalogue (the verifier reads a pair's votes beside
the query's others, learned on catalogues of the fit photos' size, as self-training learned); a
pair whose calibrated probability (as identification gives it to a catalogue individual with one
photo) is at least `accept` links the two, and linked photos form one proposed individual
(`whaleid.data.links.linked_groups`, single linkage: a photo seen from two sides links through a third).

What it never does: read a photo's truth, or decide. The proposal is a suggestion on the review
page ("same as"); a person's decision is the only one that names a new individual. numpy and
pandas; the matching is the caller's (`match`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from whaleid.data.links import linked_groups

log = logging.getLogger(__name__)

# new_individuals.csv: one row a photo proposed with at least one other.
PROPOSED_COLUMNS = ["image", "group", "size", "linked_to", "probability"]


def no_proposal() -> pd.DataFrame:
    """A proposal of no photo (`PROPOSED_COLUMNS`)."""
    return pd.DataFrame({"image": pd.Series(dtype=str), "group": pd.Series(dtype=np.int64),
                         "size": pd.Series(dtype=np.int64), "linked_to": pd.Series(dtype=str),
                         "probability": pd.Series(dtype=np.float64)})


def propose(queries: np.ndarray, images: np.ndarray, *, match: Callable[[np.ndarray, np.ndarray, np.ndarray],
            pd.DataFrame], rank: Callable[[pd.DataFrame], pd.DataFrame], accept: float) -> pd.DataFrame:
    """The `queries` (numbers in their search; `images`: every query's name, by number) proposed
    as photos of one new individual with at least one other of them.

    `match(added, ids, queries)` verifies the `queries` against the catalogue grown by the photos
    of the queries `added` as photos of `ids`, never a query against its own photo
    (`identify.keypoint_matcher`); `rank(pairs)` gives each query's individuals with their
    calibrated ``probability`` (``query``, ``id``), as identification ranks them. Each query is
    added as an individual of its own; a pair of them is linked where either's probability for
    the other is at least `accept`.

    Returns `PROPOSED_COLUMNS`: each proposed photo's ``image``, its ``group`` (from 1, the
    largest first, then by first image), the group's ``size``, and the photo it is most surely
    linked with (``linked_to``) and that link's ``probability``."""
    queries = np.asarray(queries, np.int64)
    if len(queries) < 2:
        return no_proposal()
    # an id no catalogue individual has: the photo's own name, marked
    own_ids = np.array([f"proposed:{images[query]}" for query in queries.tolist()])
    ranked = rank(match(queries, own_ids, queries))
    # each link by the two queries' places among `queries`
    first = ranked["query"].map({query: k for k, query in enumerate(queries.tolist())})
    second = ranked["id"].map({own_id: k for k, own_id in enumerate(own_ids.tolist())})
    linked = (first.notna() & second.notna() & (ranked["probability"].to_numpy(np.float64) >= accept)).to_numpy()
    if not linked.any():
        return no_proposal()
    first, second = first[linked].to_numpy(np.int64), second[linked].to_numpy(np.int64)
    # the two directions of a pair are one link: its best probability
    links = pd.DataFrame({"a": np.minimum(first, second), "b": np.maximum(first, second),
                          "probability": ranked["probability"].to_numpy(np.float64)[linked]})
    links = links.groupby(["a", "b"], as_index=False)["probability"].max()
    group = linked_groups(len(queries), links["a"].to_numpy(), links["b"].to_numpy())
    sizes = np.bincount(group)
    both_ways = pd.concat([links.rename(columns={"a": "item", "b": "other"}),
                           links.rename(columns={"b": "item", "a": "other"})], ignore_index=True)
    best = both_ways.sort_values(["item", "probability", "other"], ascending=[True, False, True],
                                 kind="stable").drop_duplicates("item").set_index("item")
    items = best.index.to_numpy(np.int64)
    names = images[queries]
    table = pd.DataFrame({"image": names[items], "group": group[items], "size": sizes[group[items]],
                          "linked_to": names[best["other"].to_numpy(np.int64)],
                          "probability": best["probability"].to_numpy(np.float64)})
    table = table.sort_values(["size", "group", "image"], ascending=[False, True, True], kind="stable")
    # groups numbered from 1, the largest first, then by where their first photo comes
    order = {old: new for new, old in enumerate(table.drop_duplicates("group")["group"].tolist(), start=1)}
    table["group"] = table["group"].map(order).astype(np.int64)
    table = table.sort_values(["group", "image"], kind="stable").reset_index(drop=True)
    log.info("%d of %d photos answered new_whale first are proposed as %d new individuals (links at or above "
             "%.4g; largest %d photos)", len(table), len(queries), table["group"].nunique(), accept,
             int(table["size"].max()))
    return table[PROPOSED_COLUMNS]
