"""MAP@5, the Kaggle playground's score, and top-1 accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def average_precision_at_5(predicted: Sequence[str], truth: str) -> float:
    """1/rank of the first correct answer among the first five (each image has one truth)."""
    for rank, answer in enumerate(predicted[:5], start=1):
        if answer == truth:
            return 1.0 / rank
    return 0.0


def map_at_5(predictions: Sequence[Sequence[str]], truths: Sequence[str]) -> float:
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    if not truths:
        raise ValueError("no images to score")
    return sum(average_precision_at_5(p, t) for p, t in zip(predictions, truths)) / len(truths)


def top1_accuracy(predictions: Sequence[Sequence[str]], truths: Sequence[str]) -> float:
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    if not truths:
        raise ValueError("no images to score")
    return sum(bool(p) and p[0] == t for p, t in zip(predictions, truths)) / len(truths)
