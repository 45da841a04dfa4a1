"""The new_whale threshold chosen on many queries: the local method's out-of-fold answers to
the fit photos, not validation's few.

Validation holds a few hundred photos, a few dozen of them new individuals (32 of 160 on the
right whales), and the MAP@5 curve of so few is jagged: its best threshold is partly where its
own noise peaked. The verifier already asks each fit photo against the other folds' photos, as
identification asks a test photo against the catalogue (`verifier.fold_answers`): a thousand
answers or more, whose truth is known, a photo whose individual has no photo in the other folds
being a new individual there as a new whale is at test.

Their share of new individuals is not the one identification meets: the fit photos' folds make
their own. So each answer is weighed, the new ones together by `new_share` and the known ones
by the rest, and the threshold is the one with the best weighted MAP@5. `new_share` is the
validation split's share of new whales, which its design sets (`validation.single_image_fraction`
and `new_whale_fraction` of train): how many, never which photo or what was answered. numpy and
pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.identification.candidates import N_CANDIDATES


def weighted_map5(probabilities: np.ndarray, truth_rank: np.ndarray, new: np.ndarray, thresholds: Sequence[float],
                  new_share: float) -> np.ndarray:
    """MAP@5 at each of `thresholds`, new_whale put at the first rank whose probability is
    below it (as `answers.insert_new_whale` puts it; fifth where none is): `probabilities`
    (queries, `N_CANDIDATES`) of each query's best individuals, best first (below any threshold,
    e.g. -1, where fewer were verified); `truth_rank`, where its own individual is among them
    (-1: not there, or a new individual); `new`, whether it is a new individual. The new
    queries' mean average precision weighs `new_share`, the known ones' the rest."""
    probabilities = np.asarray(probabilities, np.float64)
    truth_rank, new = np.asarray(truth_rank, np.int64), np.asarray(new, bool)
    if probabilities.ndim != 2 or probabilities.shape[1] != N_CANDIDATES:
        raise ValueError(f"expected ({len(truth_rank)}, {N_CANDIDATES}) probabilities, got {probabilities.shape}")
    if not 0 <= new_share <= 1:
        raise ValueError(f"new_share must be in [0, 1], got {new_share}")
    if (new & (truth_rank >= 0)).any():
        raise ValueError("a new individual's own cannot be among its answers")
    thresholds = np.asarray(thresholds, np.float64)
    below = probabilities[None, :, :] < thresholds[:, None, None]
    # (thresholds, queries): new_whale's rank
    position = np.where(below.any(axis=2), below.argmax(axis=2), N_CANDIDATES)
    # a known query's own answer moves one down where new_whale comes at or before it
    own = np.where(truth_rank < position, truth_rank, truth_rank + 1)
    precision = np.where(new, 1 / (position + 1), np.where(truth_rank >= 0, 1 / (np.maximum(own, 0) + 1), 0.0))
    if new_share > 0 and not new.any():
        raise ValueError(f"no new individuals among the queries to weigh {new_share:.0%} of MAP@5 by")
    if new_share < 1 and new.all():
        raise ValueError(f"no known individuals among the queries to weigh {1 - new_share:.0%} of MAP@5 by")
    shares = [(new, new_share), (~new, 1 - new_share)]
    return sum(share * precision[:, members].mean(axis=1) for members, share in shares if share > 0)


def can_weigh(answers: pd.DataFrame, new_share: float) -> bool:
    """Whether the out-of-fold `answers` hold the kinds of query `new_share` weighs: new ones
    where it is above 0, known ones where it is below 1 (a catalogue of one photo per individual
    asks no fit photo whose individual the other folds hold)."""
    known = answers.drop_duplicates("image")["known"].astype(bool)
    return (new_share == 0 or (~known).any()) and (new_share == 1 or known.any())


def fold_threshold(answers: pd.DataFrame, pooling: str, thresholds: Sequence[float], new_share: float
                   ) -> tuple[float, pd.DataFrame]:
    """The new_whale threshold (of `thresholds`, the first of equals) with the best MAP@5 of the
    fit photos' out-of-fold `answers` (`verifier.fold_answers`) by `pooling`, weighted to
    `new_share` new individuals (`weighted_map5`); and the curve (threshold, map5, chosen)."""
    if not len(thresholds):
        raise ValueError("no thresholds to try")
    answers = answers[answers["pooling"] == pooling]
    if answers.empty:
        raise ValueError(f"no out-of-fold answers by pooling {pooling!r}")
    images = pd.Index(answers["image"].unique())
    query = images.get_indexer(answers["image"])
    rank = answers["rank"].to_numpy(np.int64)
    probabilities = np.full((len(images), N_CANDIDATES), -1.0)
    answered = answers["answer"].astype(str).ne("").to_numpy()
    probabilities[query[answered], rank[answered]] = answers["probability"].to_numpy(np.float64)[answered]
    truth_rank = np.full(len(images), -1)
    right = answers["right"].astype(bool).to_numpy()
    truth_rank[query[right]] = rank[right]
    new = ~answers.groupby("image", sort=False)["known"].first().astype(bool).reindex(images).to_numpy()
    curve = pd.DataFrame({"threshold": [float(t) for t in thresholds],
                          "map5": weighted_map5(probabilities, truth_rank, new, thresholds, new_share)})
    best = int(np.argmax(curve["map5"].to_numpy()))
    curve["chosen"] = curve.index == best
    return float(curve.loc[best, "threshold"]), curve


def read_fold_answers(path: str | Path) -> pd.DataFrame:
    """`verifier.fold_answers` as the local_verifier rule writes them: an empty ``answer`` stays
    an empty string (nothing verified), and so does an id such as "NA"."""
    return pd.read_csv(path, keep_default_na=False, na_values={"probability": [""]},
                       dtype={"image": str, "id": str, "answer": str})
