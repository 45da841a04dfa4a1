"""Who a method may answer with, and each query's best four: the known individuals of a
catalogue (`Individuals`) and a method's ranked `Candidates`.

A method is a function from a `search.Search` to `Candidates`: each query's four best known
individuals, best first, with a score each (a classifier's probabilities, a retrieval's cosine
similarities, a keypoint match's inliers or probabilities); `answers` turns them into five
answers. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from whaleid.vocabulary import N_ANSWERS, NEW_WHALE

# Four known individuals and new_whale make the five answers.
N_CANDIDATES = N_ANSWERS - 1


def check_known_individuals(count: int, what: str) -> None:
    """Five distinct answers need `N_CANDIDATES` known individuals besides new_whale: raise
    ValueError, naming `what` holds too few, where `count` is less."""
    if count < N_CANDIDATES:
        raise ValueError(f"{what}: {count} known individuals; five distinct answers need at least {N_CANDIDATES}")


@dataclass(frozen=True)
class Individuals:
    """The known individuals among a catalogue's photos; new_whale photos are of no one
    individual and belong to none.

    ``ids`` (I,): the individuals, sorted; ``photos`` (P,): the catalogue positions of their
    photos, in catalogue order; ``of_photo`` (P,): each of those photos' individual, a position
    in ``ids``.
    """

    ids: np.ndarray
    photos: np.ndarray
    of_photo: np.ndarray

    @classmethod
    def of(cls, catalogue_ids: Sequence[str], *, enough_for_answers: bool = True,
           what: str = "the catalogue") -> Individuals:
        """The individuals of the catalogue photos whose ids are `catalogue_ids`; with
        `enough_for_answers`, too few for five answers raise ValueError (`check_known_individuals`)."""
        ids = np.asarray(catalogue_ids, dtype=str)
        if ids.ndim != 1:
            raise ValueError(f"catalogue ids must be a vector, got shape {ids.shape}")
        photos = np.flatnonzero(ids != NEW_WHALE)
        individuals, of_photo = np.unique(ids[photos], return_inverse=True)
        if enough_for_answers:
            check_known_individuals(len(individuals), what)
        return cls(individuals, photos, of_photo.reshape(-1))

    @property
    def counts(self) -> np.ndarray:
        """How many photos each individual has."""
        return np.bincount(self.of_photo, minlength=len(self.ids))

    def by_individual(self) -> np.ndarray:
        """Positions in ``photos`` sorted by individual, each individual's in catalogue order:
        individual i's photos are the run of `counts`[i] from the sum of the counts before it."""
        return np.argsort(self.of_photo, kind="stable")

    def members(self) -> list[np.ndarray]:
        """Each individual's photos, as positions in ``photos``, in catalogue order."""
        return np.split(self.by_individual(), np.cumsum(self.counts)[:-1])


@dataclass(frozen=True)
class Candidates:
    """Each query's four best known ids (``ids``, best first), their scores (``top``, (N, 4))
    and the score of new_whale itself (``own``, (N,)).

    A classifier's scores are probabilities and ``own`` is the probability of its new_whale
    class (zeros when it has none); a retrieval's scores are cosine similarities and ``own`` is
    -inf, since there no photo stands for new_whale.
    """

    ids: list[list[str]]
    top: np.ndarray
    own: np.ndarray


def best_columns(scores: np.ndarray, n: int) -> np.ndarray:
    """The column indices of each row's `n` highest `scores`, highest first; ties go to the
    lower column."""
    n_columns = scores.shape[1]
    nth_highest = np.partition(scores, n_columns - n, axis=1)[:, n_columns - n]
    # Usually n candidates per row; more where scores tie with the n-th: sorting them all by
    # (row, -score, column) settles the order without a per-row loop.
    rows, columns = np.nonzero(scores >= nth_highest[:, None])
    order = np.lexsort((columns, -scores[rows, columns], rows))
    rows, columns = rows[order], columns[order]
    first = np.searchsorted(rows, np.arange(len(scores)))
    return columns[first[:, None] + np.arange(n)]


def candidates_from_scores(scores: np.ndarray, individuals: Sequence[str]) -> Candidates:
    """The `Candidates` of a (queries, individuals) score matrix whose columns are
    `individuals`: each row's four best (ties to the earlier column); ``own`` is -inf."""
    best = best_columns(scores, N_CANDIDATES) if len(scores) else np.zeros((0, N_CANDIDATES), np.int64)
    return Candidates(np.asarray(individuals)[best].tolist(), np.take_along_axis(scores, best, axis=1),
                      np.full(len(scores), -np.inf, np.float32))


def pool_candidates(candidates: Candidates, groups: Sequence[np.ndarray]) -> Candidates:
    """`candidates` with each group's photos (an encounter's) given the same four: each
    individual scored by its best score over the group's photos (each photo's four best), the
    best four, ties in the order first seen; new_whale's own score the group's lowest, so that a
    known individual any photo matches well is not outvoted."""
    ids, top, own = [list(row) for row in candidates.ids], candidates.top.copy(), candidates.own.copy()
    for members in groups:
        best: dict[str, float] = {}
        for member in members:
            for individual, score in zip(candidates.ids[member], candidates.top[member]):
                best[individual] = max(best.get(individual, -np.inf), float(score))
        ranked = sorted(best.items(), key=lambda item: -item[1])[:N_CANDIDATES]
        for member in members:
            ids[member] = [individual for individual, _ in ranked]
            top[member] = [score for _, score in ranked]
            own[member] = candidates.own[members].min()
    return Candidates(ids, top, own)
