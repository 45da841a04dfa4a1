"""The auto-accept threshold: the score at or above which a method's rank-1 answers were right at
a chosen precision on validation (`auto_accept`), and how low that precision may really be,
measured on so few answers (`wilson_lower_bound`). numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AutoAccept:
    """The auto-accept threshold as chosen on validation: the ``precision`` asked for, the
    ``threshold`` (the score at or above which validation's rank-1 answers reached it; inf: none
    did), the ``validation_precision`` reached at it (NaN: none accepted), how many validation
    queries were at or above it (``validation_accepted``) and how many had a known individual at
    rank 1 (``validation_queries``), and ``lower_bound``: how low the precision may really be,
    from so few answers (a one-sided 90% Wilson bound; NaN: none accepted)."""

    precision: float
    threshold: float
    validation_precision: float
    validation_accepted: int
    validation_queries: int
    lower_bound: float = math.nan


def auto_accept(scores: Sequence[float], correct: Sequence[bool], precision: float) -> AutoAccept:
    """The lowest score at or above which validation's rank-1 answers were right at least
    `precision` of the time: the rank-1 `scores` of the validation queries whose rank 1 is a
    known individual, and whether each was `correct`. The largest such set of the most
    confident is taken; none reaching it gives an infinite threshold (everything to a person)."""
    if not 0 < precision <= 1:
        raise ValueError(f"auto-accept precision must be in (0, 1], got {precision}")
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, bool)
    if scores.shape != correct.shape:
        raise ValueError(f"{len(scores)} scores for {len(correct)} answers")
    keep = np.isfinite(scores)
    scores, correct = scores[keep], correct[keep]
    order = np.argsort(-scores, kind="stable")
    scores, correct = scores[order], correct[order]
    # Only where the score changes can the cut fall: equal scores are accepted together.
    last_of_equals = np.append(scores[1:] != scores[:-1], True) if len(scores) else np.zeros(0, bool)
    reached = (np.cumsum(correct) / np.arange(1, len(scores) + 1) >= precision) & last_of_equals
    if not reached.any():
        return AutoAccept(precision, float("inf"), float("nan"), 0, len(scores))
    cut = int(np.flatnonzero(reached)[-1])
    return AutoAccept(precision, float(scores[cut]), float(correct[:cut + 1].mean()), cut + 1, len(scores),
                      wilson_lower_bound(int(correct[:cut + 1].sum()), cut + 1))


# One-sided 90%: the normal quantile of 0.9.
Z_90 = 1.2815515655446004


def wilson_lower_bound(right: int, answers: int, z: float = Z_90) -> float:
    """The Wilson score interval's lower end for `right` of `answers`: how low a precision
    measured on few answers may really be. On the right whales, 54 validation answers at 98%
    gave 95% on test."""
    if answers <= 0:
        return float("nan")
    share, z2 = right / answers, z * z
    centre = share + z2 / (2 * answers)
    spread = z * np.sqrt(share * (1 - share) / answers + z2 / (4 * answers * answers))
    return float((centre - spread) / (1 + z2 / answers))
