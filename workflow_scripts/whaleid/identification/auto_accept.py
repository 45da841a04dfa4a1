"""The auto-accept threshold: the score at or above which a method's rank-1 answers are right at
least a chosen precision of the time (`auto_accept`), chosen on the largest set of answers whose
truth is known: the local method's out-of-fold answers to the fit photos where its verifier
made them (`verifier.fold_answers`: each fit photo asked against the other folds' photos, as
many of its own individual's as a survey's individual has, a thousand answers or more;
`fold_auto_accept`), else validation's (a few dozen); and how right
validation's answers at or above it were (`checked_on_validation`).

On the fit photos' answers the threshold is where the answers are right that often with 90%
confidence (their Wilson lower bound reaches the precision asked), not merely where the
precision reached does: chosen where it is reached, a threshold promises what one sample gave,
noise included. Validation's few dozen answers could never be that sure (54 of 54 right is at
least 97.1%), so there the threshold is where the precision reached meets the one asked, and
the review page gives the bound beside it. Measured on the right whales in the README
("Auto-accept, stated honestly").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from whaleid.identification.fold_threshold import read_fold_answers

# What a threshold is chosen on: AutoAccept.chosen_on.
ON_VALIDATION = "validation"
ON_FIT_FOLDS = "out-of-fold fit queries"


@dataclass(frozen=True)
class AutoAccept:
    """The auto-accept threshold: the ``precision`` asked for; the ``threshold`` (the lowest
    score at or above which the rank-1 answers of the set it was chosen on, ``chosen_on``, were
    right at least that often, on the fit photos' answers with 90% confidence; inf: at no
    score); on that set, how many answers were at or above it (``chosen_accepted``) of how many
    with a known individual at rank 1 (``chosen_answers``), how right they were
    (``chosen_precision``) and how low that may really be (``lower_bound``: a one-sided 90%
    Wilson bound; both NaN: none accepted). And the same on validation, the check
    (``validation_accepted`` of ``validation_queries``, right ``validation_precision`` of the
    time), which is the set itself where it was chosen on validation."""

    precision: float
    threshold: float
    chosen_on: str
    chosen_accepted: int
    chosen_answers: int
    chosen_precision: float
    lower_bound: float
    validation_accepted: int
    validation_queries: int
    validation_precision: float

    @property
    def on_validation(self) -> bool:
        return self.chosen_on == ON_VALIDATION


def auto_accept(scores: Sequence[float], correct: Sequence[bool], precision: float,
                chosen_on: str = ON_VALIDATION) -> AutoAccept:
    """The lowest score at or above which the rank-1 answers were right at least `precision` of
    the time: the rank-1 `scores` of the queries whose rank 1 is a known individual, and whether
    each was `correct`, from the set `chosen_on` names; on the fit photos' out-of-fold answers
    (`ON_FIT_FOLDS`), right that often with 90% confidence (their Wilson lower bound at least
    `precision`). The largest such set of the most confident is taken; none reaching it gives
    an infinite threshold (everything to a person). Its validation figures are those of the
    set: `checked_on_validation` replaces them where it is another."""
    if not 0 < precision <= 1:
        raise ValueError(f"auto-accept precision must be in (0, 1], got {precision}")
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, bool)
    if scores.shape != correct.shape:
        raise ValueError(f"{len(scores)} scores for {len(correct)} answers")
    keep = np.isfinite(scores)
    scores, correct = scores[keep], correct[keep]
    order = np.argsort(-scores, kind="stable")
    scores, correct = scores[order], correct[order]
    right, answers = np.cumsum(correct), np.arange(1, len(scores) + 1)
    bounds = wilson_lower_bound(right, answers)
    # Only where the score changes can the cut fall: equal scores are accepted together.
    last_of_equals = np.append(scores[1:] != scores[:-1], True) if len(scores) else np.zeros(0, bool)
    reached = ((bounds if chosen_on == ON_FIT_FOLDS else right / answers) >= precision) & last_of_equals
    if not reached.any():
        threshold, accepted, reached_precision, bound = math.inf, 0, math.nan, math.nan
    else:
        cut = int(np.flatnonzero(reached)[-1])
        threshold, accepted = float(scores[cut]), cut + 1
        reached_precision, bound = float(right[cut] / accepted), float(bounds[cut])
    return AutoAccept(precision, threshold, chosen_on, accepted, len(scores), reached_precision, bound,
                      accepted, len(scores), reached_precision)


def checked_on_validation(accept: AutoAccept, scores: Sequence[float], correct: Sequence[bool]) -> AutoAccept:
    """`accept` with its validation figures from validation's rank-1 `scores` and whether each
    was `correct` (the queries whose rank 1 is a known individual): how many were at or above its
    threshold, and how right."""
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, bool)
    at_or_above = np.isfinite(scores) & (scores >= accept.threshold)
    return replace(accept, validation_accepted=int(at_or_above.sum()),
                   validation_queries=int(np.isfinite(scores).sum()),
                   validation_precision=float(correct[at_or_above].mean()) if at_or_above.any() else math.nan)


def fold_auto_accept(fold_answers_csv, poolings_csv, precision: float) -> AutoAccept:
    """The auto-accept threshold on the local method's probability, chosen on its out-of-fold
    answers to the fit photos (`verifier.fold_answers`, in `fold_answers_csv`) by the pooling it
    answers with (`chosen_pooling` of `poolings_csv`), those with an answer (none: nothing is
    accepted); see `auto_accept`."""
    return fold_answers_auto_accept(read_fold_answers(fold_answers_csv), chosen_pooling(poolings_csv), precision)


def chosen_pooling(poolings_csv) -> str:
    """The pooling the local method answers with: the ``chosen`` row of its poolings.csv."""
    poolings = pd.read_csv(poolings_csv)
    missing = sorted({"pooling", "chosen"} - set(poolings.columns))
    if missing:
        raise ValueError(f"{poolings_csv}: expected a {' and a '.join(missing)} column; rerun local_identify")
    pooling = poolings.loc[poolings["chosen"].astype(bool), "pooling"]
    if len(pooling) != 1:
        raise ValueError(f"{poolings_csv}: expected one chosen pooling, found {len(pooling)}")
    return pooling.iloc[0]


def fold_answers_auto_accept(answers: pd.DataFrame, pooling: str, precision: float) -> AutoAccept:
    """The auto-accept threshold chosen on the rank-1 `answers` out of fold (`verifier.fold_answers`)
    by `pooling`, those with an answer; see `auto_accept`."""
    answers = answers[(answers["pooling"] == pooling) & (answers["rank"] == 0) & (answers["answer"] != "")]
    return auto_accept(answers["probability"].to_numpy(np.float64), answers["right"].to_numpy(bool), precision,
                       ON_FIT_FOLDS)


# One-sided 90%: the normal quantile of 0.9.
Z_90 = 1.2815515655446004


def wilson_lower_bound(right, answers, z: float = Z_90):
    """The Wilson score interval's lower end for `right` of `answers` (numbers, or arrays of
    them): how low a precision measured on so many answers may really be (NaN where there are
    none). On the right whales, 54 validation answers at 98% gave 95% on test."""
    right, answers = np.asarray(right, np.float64), np.asarray(answers, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share, z2 = right / answers, z * z
        centre = share + z2 / (2 * answers)
        spread = z * np.sqrt(share * (1 - share) / answers + z2 / (4 * answers * answers))
        bound = np.where(answers > 0, (centre - spread) / (1 + z2 / answers), np.nan)
    return float(bound) if bound.ndim == 0 else bound
