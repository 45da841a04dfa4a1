"""Scoring: every method's answers scored the same way, compared side by side, the best chosen.

A method is scored on the validation split (its answers against the split's truths) and on test
where the data folder has ``test_truth.csv``, by MAP@5, the Kaggle playground's score, and
top-1 accuracy (`metrics`). `submission.csv` is the submission of the method best on validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from whaleid.evaluation.metrics import map_at_5, top1_accuracy
from whaleid.evaluation.submission import SubmissionError, read_predictions
from whaleid.io.tables import read_table
from whaleid.vocabulary import NEW_WHALE, SCORED_SPLITS

MEASURES = ("map5", "top1")


def score_predictions(predictions: dict[str, list[str]], truth: dict[str, str]) -> dict:
    """MAP@5 and top-1 over the images in `truth`; every one of them must be predicted."""
    missing = [image for image in truth if image not in predictions]
    if missing:
        raise SubmissionError(f"{len(missing)} images have no prediction, e.g. {missing[:3]}")
    images = sorted(truth)
    answers = [predictions[i] for i in images]
    truths = [truth[i] for i in images]
    return {"map5": map_at_5(answers, truths), "top1": top1_accuracy(answers, truths), "n_images": len(images)}


def score_method(method: str, validation_predictions: str | Path, split_csv: str | Path,
                 submission: str | Path, test_truth_csv: str | Path | None, new_ids: Sequence[str] = ()
                 ) -> pd.DataFrame:
    """One row per split scored (method, split, map5, top1, n_images): the method's validation
    answers against the split's truths, and its submission against `test_truth_csv` (Image,Id)
    where there is one. `new_ids`: individuals a review found new; test truth, which knows only
    train's individuals, calls them new_whale, and so do their answers when scored."""
    split = read_table(split_csv)
    held_out = split[split["subset"] == "validation"]
    truths = {"validation": (validation_predictions, dict(zip(held_out["image"], held_out["truth"])))}
    if test_truth_csv is not None:
        test_truth = read_table(test_truth_csv)
        truths["test"] = (submission, dict(zip(test_truth["Image"], test_truth["Id"])))
    new_ids = set(new_ids)
    rows = []
    for subset, (answers, truth) in truths.items():
        predictions = read_predictions(answers)
        if new_ids and subset == "test":
            predictions = {image: [NEW_WHALE if i in new_ids else i for i in row] for image, row in predictions.items()}
        rows.append({"method": method, "split": subset, **score_predictions(predictions, truth)})
    return pd.DataFrame(rows)


def comparison_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per method (in the order first seen) from the long `scores` (method, split, map5,
    top1, n_images): validation_map5, validation_top1, then test_map5, test_top1 where test was
    scored, and the number of images of each split."""
    methods = list(dict.fromkeys(scores["method"]))
    wide = scores.pivot(index="method", columns="split", values=[*MEASURES, "n_images"]).reindex(methods)
    table = pd.DataFrame({"method": methods})
    for split in SCORED_SPLITS:
        if split in set(scores["split"]):
            for measure in MEASURES:
                table[f"{split}_{measure}"] = wide[(measure, split)].to_numpy()
    for split in SCORED_SPLITS:
        if split in set(scores["split"]):
            table[f"{split}_images"] = pd.array(wide[("n_images", split)].to_numpy(), dtype="Int64")
    return table


def best_method(scores: pd.DataFrame, methods: list[str]) -> str:
    """The method of `methods` with the highest validation MAP@5 in `scores`; the first listed
    among equals."""
    validation = scores[scores["split"] == "validation"].set_index("method")["map5"]
    missing = [m for m in methods if m not in validation.index]
    if missing:
        raise ValueError(f"no validation score for {', '.join(missing)}")
    return max(methods, key=lambda m: (validation[m], -methods.index(m)))
