"""The cheap baseline: duplicates of catalogue photos, then new_whale, then the commonest ids.

The playground's test set holds photos that are also in train (re-saved or resized); a
perceptual hash finds them (`duplicates`), and for the rest `new_whale` followed by the most
frequent ids is what the Kaggle sample submission does. It answers the searches every method
answers (`search.Queries`), from the manifest's hashes alone: no image is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from whaleid.data.duplicates import duplicate_matches, duplicates_first
from whaleid.evaluation.metrics import map_at_5
from whaleid.evaluation.submission import most_frequent_ids
from whaleid.identification.answers import Identification, pool_duplicates
from whaleid.identification.candidates import check_known_individuals
from whaleid.identification.search import Queries
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE


def rank_answers(matches: list[tuple[int, str]], fallback: list[str]) -> list[str]:
    """Duplicate ids nearest first, then `new_whale`, then the fallback ids: five distinct."""
    return duplicates_first(matches, [NEW_WHALE, *fallback])


def predict(query: pd.DataFrame, catalogue: pd.DataFrame, max_distance: int) -> list[list[str]]:
    """The answers of the `query` photos against the `catalogue` photos (phash, content_hash;
    the catalogue's id), duplicates up to `max_distance` pHash bits first."""
    return _answers(duplicate_matches(query, catalogue, max_distance), catalogue, max_distance)


def _answers(matches: list[list[tuple[int, str]]], catalogue: pd.DataFrame, max_distance: int) -> list[list[str]]:
    fallback = most_frequent_ids(catalogue["id"], N_ANSWERS)
    check_known_individuals(len(fallback), "the catalogue")
    return [rank_answers([m for m in found if m[0] <= max_distance], fallback) for found in matches]


def tune_max_distance(query: pd.DataFrame, truth: Sequence[str], catalogue: pd.DataFrame,
                      candidates: Sequence[int]) -> tuple[int, pd.DataFrame]:
    """The pHash distance with the best validation MAP@5 (the smallest of equals), and the curve."""
    matches = duplicate_matches(query, catalogue, max(candidates))
    curve = pd.DataFrame({"max_distance": list(candidates),
                          "map5": [map_at_5(_answers(matches, catalogue, d), truth) for d in candidates]})
    best = int(curve.loc[curve["map5"].idxmax(), "max_distance"])
    return best, curve


def identify(queries: Queries, max_distance: int | str, candidates: Sequence[int]) -> Identification:
    """Validation and test answers, the curve of validation MAP@5 by pHash distance (over
    `candidates`), and the distance used: chosen on validation where `max_distance` is "auto",
    else `max_distance` itself (the curve is computed either way, so the choice can be reviewed).
    """
    validation, test = queries.searches()
    tuned, curve = tune_max_distance(validation.queries, validation.queries["truth"].tolist(), validation.catalogue,
                                     candidates)
    chosen = tuned if max_distance == "auto" else int(max_distance)
    curve["chosen"] = curve["max_distance"] == chosen
    return Identification(
        pd.DataFrame({"image": validation.queries["image"].tolist(),
                      "answers": predict(validation.queries, validation.catalogue, chosen)}),
        pd.DataFrame({"image": test.queries["image"].tolist(), "answers": queries.reviewed_first(_answers(
            # the photos of one encounter answer with the duplicates of them all
            pool_duplicates(duplicate_matches(test.queries, test.catalogue, chosen), queries.encounter_groups()),
            test.catalogue, chosen))}),
        curve, chosen)
