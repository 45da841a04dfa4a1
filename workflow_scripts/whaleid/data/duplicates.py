"""Photos that are the same picture as a catalogue photo: found first by every method.

The playground's test set holds photos that are also in train, re-saved or resized. Identical
bytes (the same SHA-256) or a perceptual hash within a few bits give their id away, and every
method ranks that id first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from whaleid.data.images import hamming_distances, hashes_to_uint64
from whaleid.vocabulary import N_ANSWERS

# Queries compared with the whole catalogue at once: bounds the (queries, catalogue) distances.
_QUERY_CHUNK = 512

Duplicates = Sequence[Sequence[tuple[int, str]]]


def duplicate_matches(query: pd.DataFrame, catalogue: pd.DataFrame, max_distance: int) -> list[list[tuple[int, str]]]:
    """For each query photo (columns phash, content_hash), the (distance, id) of catalogue
    photos (phash, content_hash, id) that are the same picture: identical bytes (distance -1,
    ranked first) or a pHash within `max_distance` bits."""
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


def within(duplicates: Duplicates, max_distance: int) -> list[list[tuple[int, str]]]:
    """The `duplicates` of each image no more than `max_distance` pHash bits away (identical
    bytes, distance -1, always)."""
    return [[match for match in found if match[0] <= max_distance] for found in duplicates]


def duplicates_first(matches: Sequence[tuple[int, str]], answers: Sequence[str]) -> list[str]:
    """The ids of duplicate photos ((distance, id) from `duplicate_matches`, nearest first)
    ahead of a method's own `answers`: five distinct."""
    ranked: list[str] = []
    for whale_id in [whale_id for _, whale_id in sorted(matches, key=lambda m: m[0])] + list(answers):
        if whale_id not in ranked:
            ranked.append(whale_id)
    return ranked[:N_ANSWERS]
