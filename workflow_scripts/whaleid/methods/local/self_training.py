"""Self-training: a survey's own photos, answered surely, become catalogue photos.

Most individuals of a real catalogue have one photo, and a new photo of one often shares too
little with it to be verified. But a survey photographs an individual again and again: on the
right whales the 884 test photos of individuals with one catalogue photo are of 111 individuals.
Once one of them is identified surely, the others may match it far better than the old
catalogue photo (the same season's scars, light and angle). Kaggle's winners gained from such
pseudo-labels; Crall's thesis measured 10 to 20 points from a second photo per individual.

So, round after round (`self_train`): the queries whose first answer is at least `accept` likely
(the local method's calibrated probability; `accept` is where the fit photos' out-of-fold
answers are right as often as asked, with 90% confidence: `identification.auto_accept`) join the
catalogue as photos of that individual; the queries not yet accepted are matched again against
the grown catalogue, and every query is ranked again. Rounds stop after `rounds`, or as soon as
one accepts nothing new. What a pair measures depends on its two photos alone, so the pairs a
query has so far are handed to the matching, which does not check them again (on the right
whales about half of a second round's pairs, 0.70 of its time).

Against the whole grown catalogue, not the accepted photos alone: the verifier reads a pair's
votes beside the query's others (`pairs.with_query_context`), learned on catalogues of the fit
photos' size. Against a few hundred accepted photos alone, the best wrong individual's share of
the votes swells: on the right whales that put a known individual first for 13 points more of
the new whales, and validation fell.

What it never does: read a query's truth (only probabilities decide), pseudo-label a photo a
person identified (their decision is its id, `fixed`), or let an accepted photo's pairs change
after it was accepted. numpy and pandas; the matching is the caller's (`match`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def self_train(pairs: pd.DataFrame, n_queries: int, *, rank: Callable[[pd.DataFrame], pd.DataFrame],
               match: Callable[[np.ndarray, np.ndarray, np.ndarray], pd.DataFrame], accept: float, rounds: int,
               fixed: np.ndarray | None = None, what: str = "queries") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verified `pairs` of `n_queries` queries (``query``: each one's number; ``photo``,
    ``id``: the catalogue photo and its individual; ``probability``) grown by self-training.

    `rank(pairs)` ranks each query's individuals (``query``, ``rank`` from 0, ``id``,
    ``probability``, as `pooling.individual_scores` with the calibrated probability);
    `match(added, ids, queries, before)` verifies the `queries` (numbers) against the catalogue
    grown by the photos of the queries `added` as photos of `ids`, giving all their pairs as
    `pairs` are (``photo`` the name of a query photo where it is one of those); `before`, their
    pairs so far, it need not check again. A query is
    accepted where its first answer's probability is at least `accept`, unless `fixed` (a person
    identified it). `what` names the queries in the log.

    Returns every query's pairs (of its last matching: an accepted query's, those it was
    accepted with) and the labels given (``query``, ``id``, ``probability``, ``round``: from 1)."""
    if rounds < 0:
        raise ValueError(f"self-training rounds must be 0 or more, got {rounds}")
    fixed = np.zeros(n_queries, bool) if fixed is None else np.asarray(fixed, bool)
    labels = pd.DataFrame({"query": pd.Series(dtype=int), "id": pd.Series(dtype=str),
                           "probability": pd.Series(dtype=float), "round": pd.Series(dtype=int)})
    for round_ in range(1, rounds + 1):
        ranked = rank(pairs)
        first = ranked[ranked["rank"] == 0]
        query = first["query"].to_numpy(np.int64)
        sure = first[(first["probability"].to_numpy(np.float64) >= accept) & ~fixed[query]
                     & ~np.isin(query, labels["query"].to_numpy())]
        if sure.empty:
            log.info("self-training of the %s, round %d: no new answer at or above %.4g; stops", what, round_, accept)
            break
        labels = pd.concat([labels, sure[["query", "id", "probability"]].assign(round=round_)], ignore_index=True)
        remaining = np.setdiff1d(np.flatnonzero(~fixed), labels["query"].to_numpy(np.int64))
        individuals = labels["id"].nunique()
        log.info("self-training of the %s, round %d: %d answers at or above %.4g join the catalogue (%d photos of %d "
                 "individuals so far); %d queries are matched again", what, round_, len(sure), accept, len(labels),
                 individuals, len(remaining))
        if not len(remaining):
            break
        found = match(labels["query"].to_numpy(np.int64), labels["id"].to_numpy(str), remaining,
                      pairs[pairs["query"].isin(remaining)])
        pairs = pd.concat([pairs[~pairs["query"].isin(remaining)], found], ignore_index=True)
    return pairs, labels.astype({"query": int, "round": int})
