"""How a method's scores become five answers, the same way for every method.

`answer` ends every method: photos that are duplicates of catalogue photos (identical bytes,
or a pHash within a distance of a few bits) keep those ids first; `new_whale` goes at the first
rank whose score falls below a threshold; the duplicate distance and the threshold are chosen
together on the validation search by MAP@5 and applied to the test search unchanged. The
result is an `Identification`, written as Kaggle-style predictions. numpy and pandas only, so
that a method without TensorFlow can use it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.data.duplicates import Duplicates, duplicate_matches, duplicates_first, within
from whaleid.evaluation.metrics import map_at_5
from whaleid.evaluation.submission import write_predictions
from whaleid.identification.candidates import Candidates, pool_candidates
from whaleid.identification.search import Queries, Search
from whaleid.io.files import write_csv
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE


def insert_new_whale(candidates: Candidates, threshold: float) -> list[list[str]]:
    """Five answers per image: its candidates with `new_whale` at the first rank whose
    candidate's score is below `threshold`, or below new_whale's own score where that is
    higher; fifth if none is."""
    below = candidates.top < np.maximum(float(threshold), candidates.own)[:, None]
    position = np.where(below.any(axis=1), below.argmax(axis=1), N_ANSWERS - 1)
    return [row[:at] + [NEW_WHALE] + row[at:] for row, at in zip(candidates.ids, position.tolist())]


def final_answers(candidates: Candidates, threshold: float, duplicates: Duplicates | None = None) -> list[list[str]]:
    """`insert_new_whale`, with each image's `duplicates` ((distance, id) pairs, as
    `duplicates.duplicate_matches` finds them) ahead, if given."""
    answers = insert_new_whale(candidates, threshold)
    if duplicates is None:
        return answers
    if len(duplicates) != len(answers):
        raise ValueError(f"{len(duplicates)} duplicate lists for {len(answers)} images")
    return [duplicates_first(found, row) for found, row in zip(duplicates, answers)]


def sweep_new_whale_threshold(candidates: Candidates, truths: Sequence[str], thresholds: Sequence[float],
                              duplicates: Duplicates | None = None) -> tuple[float, pd.DataFrame]:
    """The new_whale threshold with the best MAP@5 of `final_answers` against `truths` (the
    first of equals, in the order given), and the curve (threshold, map5, chosen)."""
    if not len(thresholds):
        raise ValueError("no thresholds to try")
    scores = [map_at_5(final_answers(candidates, t, duplicates), truths) for t in thresholds]
    best = int(np.argmax(scores))
    curve = pd.DataFrame({"threshold": [float(t) for t in thresholds], "map5": scores})
    curve["chosen"] = curve.index == best
    return float(thresholds[best]), curve


def sweep_duplicates_and_threshold(candidates: Candidates, truths: Sequence[str], thresholds: Sequence[float],
                                   duplicates: Duplicates, max_distances: Sequence[int]
                                   ) -> tuple[int, float, pd.DataFrame]:
    """The pHash distance up to which `duplicates` (found up to the largest of `max_distances`)
    come first, and the new_whale threshold, with the best MAP@5 of `final_answers` together;
    among equals the smallest distance, then the first threshold. Returns them and the curve
    (max_distance, threshold, map5, chosen).

    Chosen for each method rather than taken from the baseline: the baseline has nothing else
    to answer with, so it gains from loose matches that push a good model's right answer down.
    """
    if not len(max_distances):
        raise ValueError("no duplicate distances to try")
    curves = []
    for distance in sorted(max_distances):
        _, curve = sweep_new_whale_threshold(candidates, truths, thresholds, within(duplicates, distance))
        curves.append(curve.drop(columns="chosen").assign(max_distance=int(distance)))
    curve = pd.concat(curves, ignore_index=True)[["max_distance", "threshold", "map5"]]
    best = int(np.argmax(curve["map5"].to_numpy()))
    curve["chosen"] = curve.index == best
    return int(curve.loc[best, "max_distance"]), float(curve.loc[best, "threshold"]), curve


def pool_duplicates(duplicates: Duplicates, groups: Sequence[np.ndarray]) -> Duplicates:
    """Each group's photos (an encounter's) given the duplicates of them all, nearest first."""
    pooled = [list(found) for found in duplicates]
    for members in groups:
        nearest: dict[str, int] = {}
        for member in members:
            for distance, individual in duplicates[member]:
                nearest[individual] = min(nearest.get(individual, distance), distance)
        shared = sorted(((distance, individual) for individual, distance in nearest.items()), key=lambda m: m[0])
        for member in members:
            pooled[member] = shared
    return pooled


@dataclass(frozen=True)
class Choice:
    """What validation chose: the pHash distance up to which duplicates come first, the
    new_whale threshold, the curve of every pair tried (max_distance, threshold, map5, chosen),
    its best MAP@5, and the validation queries' duplicates within the chosen distance."""

    max_distance: int
    threshold: float
    curve: pd.DataFrame
    map5: float
    duplicates: list[list[tuple[int, str]]]


def choose_on_validation(search: Search, candidates: Candidates, phash_distances: Sequence[int],
                         thresholds: Sequence[float]) -> Choice:
    """The duplicate distance (of `phash_distances`) and new_whale threshold (of `thresholds`)
    with the best MAP@5 of the validation `search`'s answers from `candidates`, together (see
    `sweep_duplicates_and_threshold`). Duplicates are looked for in the search's catalogue."""
    duplicates = duplicate_matches(search.queries, search.catalogue, max(phash_distances))
    distance, threshold, curve = sweep_duplicates_and_threshold(
        candidates, search.queries["truth"].tolist(), thresholds, duplicates, phash_distances)
    return Choice(distance, threshold, curve, float(curve.loc[curve["chosen"], "map5"].iloc[0]),
                  within(duplicates, distance))


@dataclass(frozen=True)
class Identification:
    """A method's answers: ``validation`` and ``test`` (image, answers: five ids each), the
    validation ``curve`` its setting was chosen on, and what was ``chosen``: the new_whale
    threshold (the baseline, which has none, chooses its pHash distance)."""

    validation: pd.DataFrame
    test: pd.DataFrame
    curve: pd.DataFrame
    chosen: float

    def write(self, validation_csv: str | Path, test_csv: str | Path, curve_csv: str | Path) -> None:
        """The curve, and the answers of both splits as checked Kaggle-style predictions."""
        write_csv(self.curve, curve_csv)
        write_predictions(validation_csv, self.validation["image"], self.validation["answers"])
        write_predictions(test_csv, self.test["image"], self.test["answers"])


def answer(queries: Queries, validation_candidates: Candidates, test_candidates: Candidates,
           phash_distances: Sequence[int], thresholds: Sequence[float], logger: logging.Logger | None = None
           ) -> Identification:
    """How every method ends: the duplicate distance and the new_whale threshold chosen
    together on the validation search, then both splits answered with them (duplicates of each
    search's own catalogue first). The test photos of one encounter are answered together
    (`pool_candidates`, `pool_duplicates`); those a person identified, with their own id first."""
    validation, test = queries.searches()
    choice = choose_on_validation(validation, validation_candidates, phash_distances, thresholds)
    validation_answers = final_answers(validation_candidates, choice.threshold, choice.duplicates)
    if logger is not None:
        logger.info("duplicates up to %d pHash bits first, new_whale threshold %g: validation MAP@5 %.4f",
                    choice.max_distance, choice.threshold, choice.map5)
    # the photos of one encounter pool their evidence, and are answered together
    groups = queries.encounter_groups()
    test_answers = queries.reviewed_first(final_answers(
        pool_candidates(test_candidates, groups), choice.threshold,
        pool_duplicates(duplicate_matches(test.queries, test.catalogue, choice.max_distance), groups)))
    return Identification(pd.DataFrame({"image": validation.queries["image"].tolist(), "answers": validation_answers}),
                          pd.DataFrame({"image": test.queries["image"].tolist(), "answers": test_answers}),
                          choice.curve, choice.threshold)


def identify_with(rank: Callable[[Search], Candidates], queries: Queries, phash_distances: Sequence[int],
                  thresholds: Sequence[float], logger: logging.Logger | None = None) -> Identification:
    """A method, `rank`, run on both of the `queries`' searches and answered as `answer` says."""
    validation, test = queries.searches()
    return answer(queries, rank(validation), rank(test), phash_distances, thresholds, logger)
