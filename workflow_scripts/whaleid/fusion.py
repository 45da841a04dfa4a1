"""The `fused` method: the local-feature and embedding rankings combined into one.

The two fail differently: keypoint matching is sure of itself where the same spots are seen
again and silent where a photo is blurred, shot from far off or shows another part of the
animal; an embedding always ranks every individual, roughly. Each individual's fused score is

    weight * inliers / (inliers + half_inliers) + (1 - weight) * similarity

where `inliers` is its verified inlier count from `local_matching` plus its share of the
query's most votes (less than one, so that equal counts are ordered by votes, as the local
method orders them; 0 where it was not on the query's shortlist), squashed into [0, 1) so that
it is on the scale of `similarity`, the
embedding's cosine similarity (`retrieval.individual_scores`). `half_inliers` is the count
that scores one half. The weight and the new_whale threshold are chosen together on the
validation split by MAP@5, like every other method's threshold; a weight of 0 is the
embedding alone, 1 the keypoints alone (the embedding then only orders the unverified).
numpy and pandas only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .catalogue import read_embeddings
from .ranking import Candidates, answer_validation_and_test
from .retrieval import N_CANDIDATES, best_columns, individual_scores
from .tables import fit_and_validation, read_table, with_hashes

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
    best = best_columns(fused, N_CANDIDATES) if len(fused) else np.zeros((0, N_CANDIDATES), np.int64)
    ids = np.asarray(individuals)
    return Candidates(ids[best].tolist(), np.take_along_axis(fused, best, axis=1),
                      np.full(len(fused), -np.inf, np.float32))


def choose_weight(validation: pd.DataFrame, validation_local: np.ndarray, validation_similarities: np.ndarray,
                  fit: pd.DataFrame, test: pd.DataFrame, test_local: np.ndarray, test_similarities: np.ndarray,
                  train: pd.DataFrame, individuals: Sequence[str], test_individuals: Sequence[str],
                  weights: Sequence[float], phash_distances: Sequence[int], thresholds: Sequence[float], logger=None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, float, float]:
    """The weight, duplicate distance and new_whale threshold with the best validation MAP@5
    together (among equal weights the `middle_of_best`, in the order given), as
    `ranking.answer_validation_and_test` chooses the last two for each weight.

    `validation_*` score the validation photos against the `fit` catalogue (columns in the
    order of `individuals`), `test_*` the test photos against all of `train` (in the order of
    `test_individuals`). Returns the validation and test answers, the chosen weight's curve,
    the weights' table (weight, map5, threshold, chosen), the weight and the threshold."""
    if not len(weights):
        raise ValueError("no fusion weights to try")
    tried = []
    for weight in weights:
        candidates = fuse(validation_local, validation_similarities, individuals, weight)
        # Test answers are made for the chosen weight only (below): here the validation sweep.
        _, _, curve, threshold = answer_validation_and_test(
            validation, candidates, fit, test.iloc[:0], _no_candidates(), train, phash_distances, thresholds)
        tried.append((float(weight), float(curve.loc[curve["chosen"], "map5"].iloc[0]), threshold))
    table = pd.DataFrame(tried, columns=["weight", "map5", "threshold"])
    best = middle_of_best(table["map5"].to_numpy())
    table["chosen"] = table.index == best
    weight = float(table.loc[best, "weight"])
    validation_answers, test_answers, curve, threshold = answer_validation_and_test(
        validation, fuse(validation_local, validation_similarities, individuals, weight), fit,
        test, fuse(test_local, test_similarities, test_individuals, weight), train, phash_distances, thresholds)
    if logger is not None:
        logger.info("fusion weight %g (of %s), new_whale threshold %g: validation MAP@5 %.4f", weight,
                    ", ".join(f"{w:g}" for w in weights), threshold, table.loc[best, "map5"])
    return validation_answers, test_answers, curve, table, weight, threshold


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


def _no_candidates() -> Candidates:
    return Candidates([], np.zeros((0, N_CANDIDATES), np.float32), np.zeros(0, np.float32))


def fuse_splits(validation_shortlists_csv: str | Path, test_shortlists_csv: str | Path, train_npy: str | Path,
                train_index: str | Path, test_npy: str | Path, test_index: str | Path, split_csv: str | Path,
                manifest_csv: str | Path, weights: Sequence[float], half_inliers: float,
                phash_distances: Sequence[int], thresholds: Sequence[float], *, aggregate: str = "max",
                top_k: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, float, float]:
    """The fused method on both splits, from the local method's shortlists and the embeddings:
    see `choose_weight` for what it returns. Validation photos are scored against the `fit`
    part of train, test photos against all of it, by both methods alike."""
    train_embeddings, _ = read_embeddings(train_npy, train_index)
    manifest = read_table(manifest_csv)
    train, fit, validation_rows = fit_and_validation(train_index, split_csv, manifest, manifest_csv,
                                                     len(train_embeddings))
    validation = train.iloc[validation_rows]
    test_embeddings, test_table = read_embeddings(test_npy, test_index)
    test = with_hashes(test_table[["image"]], manifest, "test", manifest_csv)

    individuals, validation_similarities = individual_scores(
        train_embeddings[validation_rows], train_embeddings[fit], train["id"][fit].tolist(), aggregate=aggregate,
        top_k=top_k)
    test_individuals, test_similarities = individual_scores(
        test_embeddings, train_embeddings, train["id"].tolist(), aggregate=aggregate, top_k=top_k)
    validation_local = local_score_matrix(_read_shortlists(validation_shortlists_csv), validation["image"].tolist(),
                                          individuals, half_inliers)
    test_local = local_score_matrix(_read_shortlists(test_shortlists_csv), test["image"].tolist(), test_individuals,
                                    half_inliers)
    return choose_weight(validation, validation_local, validation_similarities, train[fit], test, test_local,
                         test_similarities, train, individuals, test_individuals, weights, phash_distances,
                         thresholds, log)
