"""Scores made probabilities: P(same individual) from any score that rises with it.

A method's raw score (verified inliers, a cosine similarity, a tree ensemble's log-odds) says
which candidate is likelier, not how likely: an inlier count of 12 means one thing in a catalogue
of 30 individuals and another in one of 3,000. A `Calibration` is fitted on pairs whose answer
is known (fit photos only: never a validation or test photo) and maps a score to the share of
such pairs that were of the same individual: isotonic regression where there are enough pairs
of both kinds, Platt's sigmoid otherwise (isotonic regression overfits a few points).

Isotonic regression is a step function: it maps whole ranges of scores to one value, and a
ranking by those values would tie candidates the raw score told apart. So every calibration
adds a sliver (`STRICT_SHARE`) of a sigmoid of the score, which keeps the map strictly increasing
and moves no probability by more than that share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from whaleid.vocabulary import CALIBRATIONS

# Pairs of each kind (same, different) that isotonic regression needs under "auto".
ISOTONIC_MIN_PAIRS = 200
# The share of a probability taken from a strictly increasing sigmoid of the score.
STRICT_SHARE = 1e-3
# Without a pair of one individual to calibrate on (a catalogue of one photo per individual), a
# score is taken to be as likely of one individual as not this many standard deviations above the
# mean of the pairs seen, all of two individuals: far out, where wrong pairs seldom reach.
PRIOR_SPREADS = 3.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x, np.float64)))


@dataclass(frozen=True)
class Calibration:
    """A strictly increasing map from a score to P(same individual). ``method``: how it was
    fitted; ``x``, ``y``: the isotonic steps (empty for a sigmoid); ``slope``, ``intercept``: the
    sigmoid, which the isotonic map takes `STRICT_SHARE` of; ``centre``, ``spread``: the scores'
    mean and standard deviation, which the sigmoid's input is standardised by."""

    method: str
    x: np.ndarray
    y: np.ndarray
    slope: float
    intercept: float
    centre: float
    spread: float

    def __call__(self, scores) -> np.ndarray:
        scores = np.asarray(scores, np.float64)
        sigmoid = _sigmoid(self.slope * (scores - self.centre) / self.spread + self.intercept)
        if self.method == "sigmoid":
            return sigmoid
        steps = np.interp(scores, self.x, self.y)
        return (1 - STRICT_SHARE) * steps + STRICT_SHARE * sigmoid

    def to_dict(self) -> dict:
        return {"method": self.method, "x": self.x.tolist(), "y": self.y.tolist(), "slope": self.slope,
                "intercept": self.intercept, "centre": self.centre, "spread": self.spread}

    @classmethod
    def from_dict(cls, values: dict) -> Calibration:
        return cls(values["method"], np.asarray(values["x"], np.float64), np.asarray(values["y"], np.float64),
                   float(values["slope"]), float(values["intercept"]), float(values["centre"]),
                   float(values["spread"]))


def fit_calibration(scores, same, method: str = "auto") -> Calibration:
    """The `Calibration` of `scores` against `same` (True where the pair is of one individual):
    ``isotonic``, ``sigmoid``, or ``auto`` (isotonic where there are `ISOTONIC_MIN_PAIRS` of
    each kind). The sigmoid's slope is kept positive (a score that falls with P(same) is a bug
    upstream, not something to calibrate away)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {method!r}: choose one of {', '.join(CALIBRATIONS)}")
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    if scores.shape != same.shape or scores.ndim != 1:
        raise ValueError(f"{scores.shape} scores for {same.shape} answers: expected one each")
    if not np.isfinite(scores).all():
        raise ValueError("scores to calibrate must be finite")
    positives, negatives = int(same.sum()), int((~same).sum())
    if not positives or not negatives:
        raise ValueError(f"calibration needs pairs of both kinds; got {positives} of one individual and "
                         f"{negatives} of two")
    if method == "auto":
        method = "isotonic" if min(positives, negatives) >= ISOTONIC_MIN_PAIRS else "sigmoid"
    centre, spread = float(scores.mean()), float(scores.std()) or 1.0
    logistic = LogisticRegression(C=1e4).fit(((scores - centre) / spread)[:, None], same)
    slope = max(float(logistic.coef_[0, 0]), 1e-6)
    intercept = float(logistic.intercept_[0])
    x = y = np.zeros(0)
    if method == "isotonic":
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, same.astype(float))
        x, y = np.asarray(isotonic.X_thresholds_, np.float64), np.asarray(isotonic.y_thresholds_, np.float64)
    return Calibration(method, x, y, slope, intercept, centre, spread)


def prior_calibration(scores) -> Calibration:
    """The sigmoid of `scores` that no pair of one individual was among (their mean and spread):
    1/2 at `PRIOR_SPREADS` standard deviations above their mean, 0.05 at their mean. A prior, not
    a fit: it keeps the score's ranking and makes a probability of it that wrong pairs seldom
    reach, until the catalogue has photos to calibrate on."""
    scores = np.asarray(scores, np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("scores to calibrate must be finite")
    centre, spread = (float(scores.mean()), float(scores.std()) or 1.0) if len(scores) else (0.0, 1.0)
    return Calibration("sigmoid", np.zeros(0), np.zeros(0), 1.0, -PRIOR_SPREADS, centre, spread)


def reliability(probabilities, same, bins: int = 10) -> pd.DataFrame:
    """Predicted probability against the observed share of same-individual pairs, in `bins`
    equal-width bins of the prediction: (bin_low, bin_high, pairs, predicted, observed); empty
    bins are left out."""
    probabilities = np.asarray(probabilities, np.float64)
    same = np.asarray(same, bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    table = pd.DataFrame({"bin": which, "predicted": probabilities, "observed": same.astype(float)})
    table = table.groupby("bin").agg(pairs=("predicted", "size"), predicted=("predicted", "mean"),
                                     observed=("observed", "mean")).reset_index()
    table.insert(1, "bin_low", edges[table["bin"]])
    table.insert(2, "bin_high", edges[table["bin"] + 1])
    return table.drop(columns="bin")


def expected_calibration_error(probabilities, same, bins: int = 10) -> float:
    """The pairs-weighted mean gap between predicted and observed in `reliability`'s bins."""
    table = reliability(probabilities, same, bins)
    if not len(table):
        return float("nan")
    return float((table["pairs"] * (table["predicted"] - table["observed"]).abs()).sum() / table["pairs"].sum())


def first_ranked(shortlists: pd.DataFrame, truths: dict[str, str]) -> pd.DataFrame:
    """Each query's (`truths`: image to id, new_whale where its individual is unknown)
    first-ranked individual and its probability, from shortlists (image, rank, id, probability;
    a query without one has probability 0): image, id, probability, right, unknown."""
    first = shortlists[shortlists["rank"].astype(int) == 0].set_index("image")
    images = list(truths)
    table = pd.DataFrame({"image": images, "id": first["id"].reindex(images).fillna("").to_numpy(),
                          "probability": first["probability"].astype(float).reindex(images).fillna(0.0).to_numpy()})
    truth = np.array([truths[image] for image in images], dtype=str)
    table["right"] = table["id"].to_numpy() == truth
    table["unknown"] = truth == "new_whale"
    return table


def new_individual_curve(first: pd.DataFrame, chosen: float, thresholds=None) -> pd.DataFrame:
    """Precision and recall of "a new individual" (the first-ranked probability below the
    threshold) against the truth (`first`'s ``unknown``), at each of `thresholds` (0 to 1 by
    0.02, and `chosen`): threshold, declared, precision (1 where none is declared), recall
    (1 where none is unknown), chosen."""
    grid = np.round(np.linspace(0, 1, 51), 6) if thresholds is None else np.asarray(thresholds, float)
    grid = np.unique(np.append(grid, chosen))
    probability = first["probability"].to_numpy(float)
    unknown = first["unknown"].to_numpy(bool)
    rows = []
    for threshold in grid:
        declared = probability < threshold
        hits = (declared & unknown).sum()
        rows.append((float(threshold), int(declared.sum()), hits / declared.sum() if declared.any() else 1.0,
                     hits / unknown.sum() if unknown.any() else 1.0))
    curve = pd.DataFrame(rows, columns=["threshold", "declared", "precision", "recall"])
    curve["chosen"] = np.isclose(curve["threshold"], chosen)
    return curve
