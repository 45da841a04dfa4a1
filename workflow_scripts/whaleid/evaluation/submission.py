"""Kaggle submissions: `Image,Id` with five distinct space-separated ids per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from whaleid.io.files import write_csv
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE


class SubmissionError(ValueError):
    pass


def most_frequent_ids(ids: Sequence[str], n: int) -> list[str]:
    """The `n` commonest known ids, ties broken by name so the answer is deterministic."""
    counts = pd.Series([i for i in ids if i != NEW_WHALE], dtype=str).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [whale_id for whale_id, _ in ranked[:n]]


def check_predictions(images: Sequence[str], predictions: Sequence[Sequence[str]],
                      expected_images: Sequence[str] | None = None, source: str = "submission") -> None:
    """Raise SubmissionError unless every image appears once with five distinct, non-empty ids
    (and, given `expected_images`, exactly those images)."""
    if len(images) != len(predictions):
        raise SubmissionError(f"{source}: {len(images)} images but {len(predictions)} predictions")
    seen: set[str] = set()
    for row, (image, ids) in enumerate(zip(images, predictions), start=2):
        if image in seen:
            raise SubmissionError(f"{source} row {row}: image {image!r} appears more than once")
        seen.add(image)
        if len(ids) != N_ANSWERS or len(set(ids)) != N_ANSWERS:
            raise SubmissionError(f"{source} row {row} ({image}): needs {N_ANSWERS} distinct ids, got {list(ids)}")
        if any(not i or any(c.isspace() or c == "," for c in i) for i in ids):
            raise SubmissionError(
                f"{source} row {row} ({image}): an id is empty or contains a space or comma: {list(ids)}")
    if expected_images is not None:
        missing = sorted(set(expected_images) - seen)
        extra = sorted(seen - set(expected_images))
        if missing or extra:
            raise SubmissionError(f"{source}: {len(missing)} test images missing (e.g. {missing[:3]}), "
                                  f"{len(extra)} unexpected (e.g. {extra[:3]})")


def write_predictions(path: str | Path, images: Sequence[str], predictions: Sequence[Sequence[str]],
                      expected_images: Sequence[str] | None = None) -> None:
    """Check and write predictions in the Kaggle submission format, atomically."""
    check_predictions(images, predictions, expected_images, source=str(path))
    write_csv(pd.DataFrame({"Image": list(images), "Id": [" ".join(p) for p in predictions]}), path)


def read_predictions(path: str | Path) -> dict[str, list[str]]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    predictions = {image: ids.split() for image, ids in zip(table["Image"], table["Id"])}
    check_predictions(list(predictions), list(predictions.values()), source=str(path))
    if len(predictions) != len(table):
        raise SubmissionError(f"{path}: an image appears more than once")
    return predictions


def complete_submission(predictions: dict[str, list[str]], manifest: pd.DataFrame,
                        rejected: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """Every test image the submission must answer, in order, with its answers.

    Test images that could not be read are in no method's predictions, but Kaggle still
    wants a row for each: they get `new_whale` and the commonest train ids. Returns
    (images, answers, the images so filled in).
    """
    expected = sorted(set(manifest.loc[manifest["split"] == "test", "image"])
                      | set(rejected.loc[rejected["split"] == "test", "image"]))
    fallback = [NEW_WHALE, *most_frequent_ids(manifest.loc[manifest["split"] == "train", "id"], N_ANSWERS - 1)]
    filled = [image for image in expected if image not in predictions]
    answers = [predictions.get(image, fallback) for image in expected]
    return expected, answers, filled
