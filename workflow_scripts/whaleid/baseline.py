"""The cheap baseline: duplicates of catalogue photos, then new_whale, then the commonest ids.

The playground's test set holds photos that are also in train (re-saved or resized); a
perceptual hash finds them, and for the rest `new_whale` followed by the most frequent ids is
what the Kaggle sample submission does.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .images import hamming_distances, hashes_to_uint64
from .ingest import NEW_WHALE
from .metrics import map_at_5
from .submission import N_ANSWERS, most_frequent_ids

_QUERY_CHUNK = 512


def duplicate_matches(query: pd.DataFrame, catalogue: pd.DataFrame, max_distance: int) -> list[list[tuple[int, str]]]:
    """For each query photo, the (distance, id) of catalogue photos that are the same picture:
    identical bytes (distance -1, ranked first) or a pHash within `max_distance` bits."""
    catalogue_hashes = hashes_to_uint64(catalogue["phash"])
    catalogue_ids = catalogue["id"].to_numpy()
    by_content: dict[str, list[str]] = {}
    for content, whale_id in zip(catalogue["content_hash"], catalogue_ids):
        by_content.setdefault(content, []).append(whale_id)
    query_hashes = hashes_to_uint64(query["phash"])
    matches: list[list[tuple[int, str]]] = []
    for start in range(0, len(query), _QUERY_CHUNK):
        distances = hamming_distances(query_hashes[start:start + _QUERY_CHUNK], catalogue_hashes)
        for offset, row in enumerate(distances):
            found = [(-1, i) for i in by_content.get(query["content_hash"].iloc[start + offset], [])]
            close = np.flatnonzero(row <= max_distance)
            found += sorted(zip(row[close].tolist(), catalogue_ids[close].tolist()))
            matches.append(found)
    return matches


def duplicates_first(matches: Sequence[tuple[int, str]], answers: Sequence[str]) -> list[str]:
    """The ids of duplicate photos ((distance, id) from `duplicate_matches`, nearest first)
    ahead of a method's own `answers`: five distinct. Every method ranks duplicates this way."""
    ranked: list[str] = []
    for whale_id in [whale_id for _, whale_id in sorted(matches, key=lambda m: m[0])] + list(answers):
        if whale_id not in ranked:
            ranked.append(whale_id)
    return ranked[:N_ANSWERS]


def rank_answers(matches: list[tuple[int, str]], fallback: list[str]) -> list[str]:
    """Duplicate ids nearest first, then `new_whale`, then the fallback ids: five distinct."""
    return duplicates_first(matches, [NEW_WHALE, *fallback])


def predict(query: pd.DataFrame, catalogue: pd.DataFrame, max_distance: int) -> list[list[str]]:
    return _answers(duplicate_matches(query, catalogue, max_distance), catalogue, max_distance)


def _answers(matches: list[list[tuple[int, str]]], catalogue: pd.DataFrame, max_distance: int) -> list[list[str]]:
    fallback = most_frequent_ids(catalogue["id"], N_ANSWERS)
    if len(fallback) < N_ANSWERS - 1:
        raise ValueError(f"the catalogue has {len(fallback)} known ids; five distinct answers need at least four")
    return [rank_answers([m for m in found if m[0] <= max_distance], fallback) for found in matches]


def tune_max_distance(query: pd.DataFrame, truth: Sequence[str], catalogue: pd.DataFrame,
                      candidates: Sequence[int]) -> tuple[int, pd.DataFrame]:
    """The pHash distance with the best validation MAP@5 (the smallest of equals), and the curve."""
    matches = duplicate_matches(query, catalogue, max(candidates))
    curve = pd.DataFrame({"max_distance": list(candidates),
                          "map5": [map_at_5(_answers(matches, catalogue, d), truth) for d in candidates]})
    best = int(curve.loc[curve["map5"].idxmax(), "max_distance"])
    return best, curve


def baseline_predictions(manifest: pd.DataFrame, split: pd.DataFrame, max_distance: int | str,
                         candidates: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """Validation and test predictions (Image, answers) with the catalogue each would have.

    Validation queries are matched against the `fit` part of train only, test queries against
    all of train. With `max_distance="auto"` the pHash distance is chosen on validation;
    the curve is computed either way, so the choice can be reviewed.
    """
    train = manifest[manifest["split"] == "train"].merge(split[["image", "subset", "truth"]], on="image")
    fit = train[train["subset"] == "fit"]
    validation = train[train["subset"] == "validation"]
    test = manifest[manifest["split"] == "test"]
    tuned, curve = tune_max_distance(validation, validation["truth"].tolist(), fit, candidates)
    chosen = tuned if max_distance == "auto" else int(max_distance)
    curve["chosen"] = curve["max_distance"] == chosen
    validation_answers = predict(validation, fit, chosen)
    test_answers = predict(test, train, chosen)
    return (pd.DataFrame({"image": validation["image"].tolist(), "answers": validation_answers}),
            pd.DataFrame({"image": test["image"].tolist(), "answers": test_answers}),
            curve, chosen)
