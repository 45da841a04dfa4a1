"""From verified pairs to each individual's score, and a query's four best.

An individual's score is its best photo's inlier count (`scoring` ``inliers``), or its photos'
probabilities of being of the query's individual, which the verifier (`verifier.Verifier`)
reads off the pairs' statistics, pooled (`POOLINGS`). numpy and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from whaleid.identification.candidates import N_CANDIDATES, Candidates

# How an individual's photos' probabilities make its own: its best photo's, or the chance that
# at least one of them is of it if each said so independently (noisy-or), which lets two good
# photos count for more than one.
POOLINGS = ("max", "noisy_or")


def individual_scores(pairs: pd.DataFrame, scoring: str, pooling: str = "max") -> pd.DataFrame:
    """Each query's shortlisted individuals from its verified `pairs` (`match_queries`, with a
    ``probability`` column where `scoring` is ``verifier``): a long table (query, rank from 0,
    id, votes, inliers, score), ranked by score, then inliers, then votes.

    ``score`` is the individual's best photo's foreground inliers (`scoring` ``inliers``: the
    inlier count where keypoints are not weighed) or its photos' probabilities pooled by
    `pooling` (``verifier``); ``inliers`` is its best photo's count in either case and
    ``votes`` its votes."""
    columns = {"query": int, "rank": int, "id": str, "votes": float, "inliers": int, "score": float}
    if not len(pairs):
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    if scoring == "inliers":
        score = pairs["foreground_inliers"].astype(float)
    elif pooling == "max":
        score = pairs["probability"]
    elif pooling == "noisy_or":
        # 1 - prod(1 - p), as the sum of logs: a product of many small numbers underflows
        score = np.log1p(-pairs["probability"].clip(upper=1 - 1e-12))
    else:
        raise ValueError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
    grouped = pairs.assign(score=score).groupby(["query", "id"], sort=False)
    table = grouped.agg(votes=("individual_votes", "first"), inliers=("inliers", "max"),
                        score=("score", "sum" if scoring == "verifier" and pooling == "noisy_or" else "max"))
    if scoring == "verifier" and pooling == "noisy_or":
        table["score"] = -np.expm1(table["score"])
    table = table.reset_index().sort_values(["query", "score", "inliers", "votes"],
                                            ascending=[True, False, False, False], kind="stable")
    table["rank"] = table.groupby("query").cumcount()
    return table[list(columns)].reset_index(drop=True)


def shortlist_candidates(shortlists: pd.DataFrame, n_queries: int, fallback: Sequence[str], column: str = "score"
                         ) -> Candidates:
    """The `candidates.Candidates` of `n_queries` queries from their shortlists
    (`individual_scores`): the four best individuals by rank, with their `column`. A query with
    fewer than four shortlisted (no keypoints, or a tiny catalogue) is filled from `fallback`
    (the catalogue's commonest individuals) with score -1, below any threshold tried."""
    ids = [[] for _ in range(n_queries)]
    top = np.full((n_queries, N_CANDIDATES), -1.0)
    for query, group in shortlists.sort_values(["query", "rank"]).groupby("query", sort=False):
        chosen = group.head(N_CANDIDATES)
        ids[int(query)] = chosen["id"].tolist()
        top[int(query), :len(chosen)] = chosen[column].to_numpy(float)
    for row in ids:
        for individual in fallback:
            if len(row) == N_CANDIDATES:
                break
            if individual not in row:
                row.append(individual)
        if len(row) < N_CANDIDATES:
            raise ValueError(f"fewer than {N_CANDIDATES} individuals to answer with")
    return Candidates(ids, top, np.full(n_queries, -np.inf))
