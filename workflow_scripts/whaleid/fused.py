"""The fused method: the local method's and the metric-learning method's rankings combined into one.

The two fail differently: keypoint matching is sure of itself where the same spots are seen
again and silent where a photo is blurred, shot from far off or shows another part of the
animal; an embedding always ranks every individual, roughly. Each individual's fused score is

    weight * inliers / (inliers + half_inliers) + (1 - weight) * similarity

where `inliers` is its verified inlier count from the local method (`local.matching`) plus its
share of the query's most votes (less than one, so that equal counts are ordered by votes, as
the local method orders them; 0 where it was not on the query's shortlist), squashed into [0, 1)
so that it is on the scale of `similarity`, the embedding's cosine similarity
(`metric_learning.retrieval.individual_scores`). `half_inliers` is the count that scores one
half. The weight and the new_whale threshold are chosen together on the
validation split by MAP@5, like every other method's threshold; a weight of 0 is the
embedding alone, 1 the keypoints alone (the embedding then only orders the unverified).
numpy and pandas only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .identification import (Candidates, Identification, Queries, Search, answer, candidates_from_scores,
                             choose_on_validation)
from .metric_learning.retrieval import individual_scores, read_embeddings
from .tables import read_table

log = logging.getLogger(__name__)

# What the embedding adds where the weight is 1: it orders the individuals no keypoint
# verified, without moving any verified one.
TIE_BREAK = 1e-6


def local_score_matrix(shortlists: pd.DataFrame, queries: Sequence[str], individuals: Sequence[str],
                       half_inliers: float) -> np.ndarray:
    """(queries, individuals) squashed inlier counts, n / (n + half_inliers) with n the inliers
    plus votes / (the query's most votes + 1), from the local method's shortlists (a long table
    with columns image, id, votes, inliers); 0 for the individuals not shortlisted. Shortlisted
    ids that are not among `individuals` (not in the embedding's catalogue) raise ValueError."""
    if half_inliers <= 0:
        raise ValueError(f"half_inliers must be positive, got {half_inliers}")
    row_of = {name: i for i, name in enumerate(queries)}
    column_of = {name: j for j, name in enumerate(individuals)}
    scores = np.zeros((len(queries), len(individuals)), np.float32)
    unknown_queries = sorted(set(shortlists["image"]) - set(row_of))
    if unknown_queries:
        raise ValueError(f"shortlists name {len(unknown_queries)} photos that are not queries here, e.g. "
                         f"{unknown_queries[:3]}")
    unknown_ids = sorted(set(shortlists["id"]) - set(column_of))
    if unknown_ids:
        raise ValueError(f"shortlists name {len(unknown_ids)} individuals the embedding's catalogue lacks, e.g. "
                         f"{unknown_ids[:3]}")
    rows = shortlists["image"].map(row_of).to_numpy()
    columns = shortlists["id"].map(column_of).to_numpy()
    votes = shortlists["votes"].to_numpy(np.float64)
    most_votes = shortlists.assign(votes=votes).groupby("image")["votes"].transform("max").to_numpy()
    count = shortlists["inliers"].to_numpy(np.float64) + votes / (most_votes + 1)
    scores[rows, columns] = count / (count + half_inliers)
    return scores


def fuse(local_scores: np.ndarray, similarities: np.ndarray, individuals: Sequence[str], weight: float) -> Candidates:
    """The four best individuals per query by fused score (see the module docstring), from
    `local_scores` and `similarities`, both (queries, individuals) in the order of
    `individuals`. ``own`` is -inf: no individual stands for new_whale."""
    if not 0 <= weight <= 1:
        raise ValueError(f"the fusion weight must be in [0, 1], got {weight}")
    if local_scores.shape != similarities.shape or local_scores.shape[1] != len(individuals):
        raise ValueError(f"local scores {local_scores.shape} and similarities {similarities.shape} must both be "
                         f"(queries, {len(individuals)} individuals)")
    fused = weight * local_scores + (1 - weight) * similarities
    if weight == 1:
        fused = fused + TIE_BREAK * similarities
    return candidates_from_scores(fused, individuals)


@dataclass(frozen=True)
class SearchScores:
    """Every individual's scores for a search's queries by both methods: ``individuals`` (the
    embedding's catalogue's, sorted), ``local`` (`local_score_matrix`) and ``similarities``
    (cosine), each (queries, individuals)."""

    individuals: np.ndarray
    local: np.ndarray
    similarities: np.ndarray

    def fused(self, weight: float) -> Candidates:
        return fuse(self.local, self.similarities, self.individuals, weight)


@dataclass(frozen=True)
class FusedIdentification(Identification):
    """The fused method's answers, with the ``weights`` tried (weight, map5, threshold, chosen)
    and the ``weight`` chosen."""

    weights: pd.DataFrame
    weight: float


def choose_weight(queries: Queries, validation: SearchScores, test: SearchScores, weights: Sequence[float],
                  phash_distances: Sequence[int], thresholds: Sequence[float], logger=None) -> FusedIdentification:
    """The weight, duplicate distance and new_whale threshold with the best validation MAP@5
    together (among equal weights the `middle_of_best`, in the order given), the last two
    chosen for each weight as every method chooses them (`identification.choose_on_validation`);
    then both searches answered with them. `validation` and `test` score the queries of the
    `queries`' two searches."""
    if not len(weights):
        raise ValueError("no fusion weights to try")
    validation_search, test_search = queries.searches()
    for search, scores in ((validation_search, validation), (test_search, test)):
        if not len(scores.local) == len(scores.similarities) == len(search.queries):
            raise ValueError(f"{search.split} scores of {len(scores.local)} and {len(scores.similarities)} queries "
                             f"for {len(search.queries)} {search.split} photos")
    tried = []
    for weight in weights:
        # Test answers are made for the chosen weight only (below): here the validation sweep.
        choice = choose_on_validation(validation_search, validation.fused(weight), phash_distances, thresholds)
        tried.append((float(weight), choice.map5, choice.threshold))
    table = pd.DataFrame(tried, columns=["weight", "map5", "threshold"])
    best = middle_of_best(table["map5"].to_numpy())
    table["chosen"] = table.index == best
    weight = float(table.loc[best, "weight"])
    answers = answer(queries, validation.fused(weight), test.fused(weight), phash_distances, thresholds)
    if logger is not None:
        logger.info("fusion weight %g (of %s), new_whale threshold %g: validation MAP@5 %.4f", weight,
                    ", ".join(f"{w:g}" for w in weights), answers.chosen, table.loc[best, "map5"])
    return FusedIdentification(answers.validation, answers.test, answers.curve, answers.chosen, table, weight)


def middle_of_best(scores: Sequence[float]) -> int:
    """The position of the best score; where several share it, the middle of the longest run of
    them (the first run of equals, the lower middle of an even run).

    A small validation split often scores a whole range of weights perfectly: the middle of
    that plateau is the choice furthest from where the score drops, the first is at its edge."""
    scores = np.asarray(scores, dtype=float)
    if not len(scores):
        raise ValueError("no scores to choose from")
    top = scores == scores.max()
    runs, start = [], None
    for i, is_top in enumerate([*top.tolist(), False]):
        if is_top and start is None:
            start = i
        elif not is_top and start is not None:
            runs.append((start, i))
            start = None
    first, stop = max(runs, key=lambda run: run[1] - run[0])
    return first + (stop - first - 1) // 2


def _read_shortlists(path: str | Path) -> pd.DataFrame:
    return read_table(path).astype({"votes": float, "inliers": int})


def identify(validation_shortlists_csv: str | Path, test_shortlists_csv: str | Path, train_npy: str | Path,
             train_index: str | Path, test_npy: str | Path, test_index: str | Path, split_csv: str | Path,
             manifest_csv: str | Path, *, weights: Sequence[float], half_inliers: float,
             phash_distances: Sequence[int], thresholds: Sequence[float], aggregate: str, top_k: int
             ) -> FusedIdentification:
    """The fused method on both searches, from the local method's shortlists and the embeddings
    of train and test (each .npy with its index .csv): see `choose_weight`. Both methods score
    each search's queries against the same catalogue."""
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv)
    train_embeddings, _ = read_embeddings(train_npy, train_index)
    test_embeddings, _ = read_embeddings(test_npy, test_index)
    queries.check_rows(len(train_embeddings), len(test_embeddings), train_npy, test_npy)
    shortlists = {"validation": validation_shortlists_csv, "test": test_shortlists_csv}

    def scores(search: Search) -> SearchScores:
        individuals, similarities = individual_scores(
            search.query_values(train_embeddings, test_embeddings), search.catalogue_values(train_embeddings),
            search.catalogue_ids, aggregate=aggregate, top_k=top_k)
        local = local_score_matrix(_read_shortlists(shortlists[search.split]), search.queries["image"].tolist(),
                                   individuals, half_inliers)
        return SearchScores(individuals, local, similarities)

    validation, test = queries.searches()
    return choose_weight(queries, scores(validation), scores(test), weights, phash_distances, thresholds, log)
