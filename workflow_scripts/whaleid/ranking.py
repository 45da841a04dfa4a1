"""Five answers from scored candidates: where `new_whale` goes, and the threshold that puts it there.

Every model-based method ends the same way: each image has its four best known individuals
with a score each (a classifier's probabilities, a retrieval's cosine similarities), and
`new_whale` is inserted at the first rank whose score falls below a threshold chosen on
validation by MAP@5. Photos that are duplicates of catalogue photos keep their ids first.
numpy and pandas only, so that a method without TensorFlow can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .baseline import duplicate_matches, duplicates_first
from .ingest import NEW_WHALE
from .metrics import map_at_5
from .submission import N_ANSWERS

# Digits kept of a grid's thresholds: 0.1 * 3 is 0.30000000000000004, which reads badly in a curve.
THRESHOLD_DIGITS = 6

Duplicates = Sequence[Sequence[tuple[int, str]]]


@dataclass(frozen=True)
class Candidates:
    """Each image's four best known ids (``ids``, best first), their scores (``top``, (N, 4))
    and the score of new_whale itself (``own``, (N,)).

    A classifier's scores are probabilities and ``own`` is the probability of its new_whale
    class (zeros when it has none); a retrieval's scores are cosine similarities and ``own`` is
    -inf, since there no photo stands for new_whale.
    """

    ids: list[list[str]]
    top: np.ndarray
    own: np.ndarray


def insert_new_whale(candidates: Candidates, threshold: float) -> list[list[str]]:
    """Five answers per image: its candidates with `new_whale` at the first rank whose
    candidate's score is below `threshold`, or below new_whale's own score where that is
    higher; fifth if none is."""
    below = candidates.top < np.maximum(float(threshold), candidates.own)[:, None]
    position = np.where(below.any(axis=1), below.argmax(axis=1), N_ANSWERS - 1)
    return [row[:at] + [NEW_WHALE] + row[at:] for row, at in zip(candidates.ids, position.tolist())]


def final_answers(candidates: Candidates, threshold: float, duplicates: Duplicates | None = None) -> list[list[str]]:
    """`insert_new_whale`, with each image's `duplicates` ((distance, id) pairs, as
    `baseline.duplicate_matches` finds them) ahead, if given."""
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


def within(duplicates: Duplicates, max_distance: int) -> list[list[tuple[int, str]]]:
    """The `duplicates` of each image no more than `max_distance` pHash bits away (identical
    bytes, distance -1, always)."""
    return [[match for match in found if match[0] <= max_distance] for found in duplicates]


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


def answer_validation_and_test(validation: pd.DataFrame, validation_candidates: Candidates, fit: pd.DataFrame,
                               test: pd.DataFrame, test_candidates: Candidates, train: pd.DataFrame,
                               phash_distances: Sequence[int], thresholds: Sequence[float], logger=None
                               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float]:
    """How every model-based method ends. The duplicate distance and the new_whale threshold
    are chosen together on the `validation` photos (image, truth, phash, content_hash), their
    duplicates looked for among the `fit` photos; test photos' duplicates are looked for among
    all of `train`. Returns the validation and test answers (DataFrames image, answers: five
    ids), the curve (`sweep_duplicates_and_threshold`) and the chosen threshold."""
    duplicates = duplicate_matches(validation, fit, max(phash_distances))
    distance, chosen, curve = sweep_duplicates_and_threshold(validation_candidates, validation["truth"].tolist(),
                                                             thresholds, duplicates, phash_distances)
    validation_answers = final_answers(validation_candidates, chosen, within(duplicates, distance))
    if logger is not None:
        logger.info("duplicates up to %d pHash bits first, new_whale threshold %g: validation MAP@5 %.4f",
                    distance, chosen, curve.loc[curve["chosen"], "map5"].iloc[0])
    test_answers = final_answers(test_candidates, chosen, duplicate_matches(test, train, distance))
    return (pd.DataFrame({"image": validation["image"].tolist(), "answers": validation_answers}),
            pd.DataFrame({"image": test["image"].tolist(), "answers": test_answers}),
            curve, chosen)


def threshold_grid(start: float, stop: float, step: float) -> list[float]:
    """`start`, `start` + `step`, ... up to `stop` included (when the steps reach it), each
    rounded to `THRESHOLD_DIGITS` decimals."""
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise ValueError(f"threshold grid bounds must be finite, got start {start}, stop {stop}, step {step}")
    if step <= 0:
        raise ValueError(f"threshold grid step must be positive, got {step}")
    if stop < start:
        raise ValueError(f"threshold grid stop {stop} is below its start {start}")
    # The tolerance lets (0.9 - 0.3) / 0.05 = 11.999999999999998 count as the 12 steps it means.
    n_steps = math.floor((stop - start) / step + 1e-9)
    # + 0.0 turns a rounded -0.0 into 0.0.
    return [round(start + i * step, THRESHOLD_DIGITS) + 0.0 for i in range(n_steps + 1)]
