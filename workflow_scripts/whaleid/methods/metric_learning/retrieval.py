"""Identification by nearest neighbours, the metric-learning method's: a query photo is answered
with the catalogue's individuals whose photos' embeddings are most similar to its own.

The model only turns photos into embeddings (`model`); this module does the rest in numpy,
without TensorFlow. Embeddings are compared by cosine similarity (the dot product of
L2-normalised rows). An individual's score for a query is its best similarity over its
catalogue photos ("max"), or the mean of its `top_k` best ("mean_top_k", steadier when one odd
photo matches by chance). Its four best individuals become the query's
`candidates.Candidates`, and the method ends as every method does
(`answers.answer`): duplicates first, `new_whale` where the similarity falls below a
threshold chosen on validation.

The catalogue is what queries are matched against: the fit photos for validation, all of train
for test, plus the labelled photos added to it without retraining (`additions`, for test only):
a new individual needs no training, its embeddings join the catalogue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.identification.answers import Identification, identify_with
from whaleid.identification.candidates import N_CANDIDATES, Candidates, Individuals, best_columns
from whaleid.identification.search import Queries, Search
from whaleid.io.tables import read_table
from whaleid.vocabulary import AGGREGATES

log = logging.getLogger(__name__)

# Queries compared at once: the similarities of a block take block_size x catalogue photos x 4
# bytes (400 MB for 1,024 queries against 100,000 photos).
DEFAULT_BLOCK_SIZE = 1024


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """`embeddings` (N, D) as float32 rows of unit length; rows of zeros stay zeros."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (photos, dimensions), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValueError(f"{len(bad)} embeddings hold NaN or infinite values (float32), e.g. rows {bad[:5].tolist()}")
    # Divided by each row's largest magnitude first, so that squaring cannot overflow float32.
    largest = np.abs(x).max(axis=1, keepdims=True) if x.shape[1] else np.zeros((len(x), 1), np.float32)
    x = np.divide(x, largest, out=np.zeros_like(x), where=largest > 0)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@dataclass(frozen=True)
class _Bucket:
    """The individuals with `count` catalogue photos each: their positions in the sorted
    individuals (``individuals``) and the columns ``start:stop`` of the laid-out catalogue,
    photo-major: column start + j * len(individuals) + i is photo j of individual i."""

    count: int
    individuals: np.ndarray
    start: int
    stop: int


@dataclass(frozen=True)
class _GroupedCatalogue:
    """The catalogue's known individuals (sorted ids) and their photos' normalised embeddings,
    laid out bucket by bucket (see `_Bucket`)."""

    ids: np.ndarray
    embeddings: np.ndarray
    buckets: list[_Bucket]


def _group_catalogue(catalogue: np.ndarray, catalogue_ids: Sequence[str]) -> _GroupedCatalogue:
    """Group the catalogue's photos by individual once, so that each block of queries scores
    individuals with a few whole-array operations. new_whale photos are left out: they are of
    no one individual."""
    if len(catalogue_ids) != len(catalogue):
        raise ValueError(f"{len(catalogue_ids)} catalogue ids for {len(catalogue)} catalogue embeddings")
    grouped = Individuals.of(catalogue_ids)
    # Photos sorted by individual: each individual's photos are then the run from its first one.
    photos = grouped.photos[grouped.by_individual()]
    counts = grouped.counts
    individuals = grouped.ids
    first_photo = np.concatenate([[0], np.cumsum(counts)[:-1]])
    columns, buckets, start = [], [], 0
    for count in np.unique(counts).tolist():
        members = np.flatnonzero(counts == count)
        # Photo-major, so that a block's similarities of one bucket reshape, without a copy, to
        # (queries, count, individuals), and each step over photos is a contiguous row.
        columns.append((first_photo[members][None, :] + np.arange(count)[:, None]).ravel())
        buckets.append(_Bucket(count, members, start, start + count * len(members)))
        start += count * len(members)
    layout = photos[np.concatenate(columns)]
    return _GroupedCatalogue(individuals, normalise(catalogue[layout]), buckets)


def _mean_of_best(similarities: np.ndarray, k: int) -> np.ndarray:
    """The mean of the `k` largest of (queries, count, individuals) `similarities` over the
    count axis (of all of them where count <= k)."""
    queries, count, width = similarities.shape
    if count <= k:
        return similarities.mean(axis=1)
    # An insertion into k running maxima, one photo at a time: a few elementwise passes over
    # contiguous rows, measured faster than np.sort or np.partition along the photo axis.
    best = [np.full((queries, width), -np.inf, np.float32) for _ in range(k)]
    passed_down = [np.empty((queries, width), np.float32) for _ in range(min(k - 1, 2))]
    for photo in range(count):
        carry = similarities[:, photo, :]
        for level, kept in enumerate(best):
            if level < k - 1:  # what the last level lets go is dropped: no need to keep it
                smaller = passed_down[level % 2]
                np.minimum(kept, carry, out=smaller)
                np.maximum(kept, carry, out=kept)
                carry = smaller
            else:
                np.maximum(kept, carry, out=kept)
    total = best[0]
    for kept in best[1:]:
        total += kept
    return total / k if k > 1 else total


def _individual_score_blocks(query: np.ndarray, catalogue: np.ndarray, catalogue_ids: Sequence[str],
                             aggregate: str, top_k: int, block_size: int):
    """The sorted known individuals, then (first row, (rows, individuals) scores) per block
    of `block_size` queries; see `rank_catalogue`."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {', '.join(AGGREGATES)}")
    if aggregate == "mean_top_k" and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a whole number of 1 or more, got {top_k!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be 1 or more, got {block_size}")
    query, catalogue = normalise(query), np.asarray(catalogue)
    if catalogue.ndim != 2 or catalogue.shape[1] != query.shape[1]:
        raise ValueError(f"query embeddings of dimension {query.shape[1]} but catalogue embeddings of shape "
                         f"{catalogue.shape}: they must come from the same model")
    grouped = _group_catalogue(catalogue, catalogue_ids)
    k = 1 if aggregate == "max" else int(top_k)  # the best photo is the mean of the best one
    yield grouped.ids
    for begin in range(0, len(query), block_size):
        similarities = query[begin:begin + block_size] @ grouped.embeddings.T
        scores = np.empty((len(similarities), len(grouped.ids)), np.float32)
        for bucket in grouped.buckets:
            by_photo = similarities[:, bucket.start:bucket.stop].reshape(len(similarities), bucket.count, -1)
            scores[:, bucket.individuals] = _mean_of_best(by_photo, k)
        yield begin, scores


def rank_catalogue(query: np.ndarray, catalogue: np.ndarray, catalogue_ids: Sequence[str], *, aggregate: str,
                   top_k: int, block_size: int = DEFAULT_BLOCK_SIZE) -> Candidates:
    """The four best individuals of the catalogue for each query embedding, with their scores.

    `query` (Q, D) and `catalogue` (N, D) are embeddings (normalised here, so cosine
    similarities are compared), `catalogue_ids` the id of each catalogue photo; photos of
    `new_whale` are ignored. An individual's score is its best similarity over its photos
    (`aggregate` "max"), or the mean of its `top_k` best ("mean_top_k"; all of them where it has
    fewer). Ties go to the id that sorts first. ``own`` is -inf: no photo stands for new_whale.
    Queries are compared `block_size` at a time, which bounds the memory used.
    """
    blocks = _individual_score_blocks(query, catalogue, catalogue_ids, aggregate, top_k, block_size)
    ids = next(blocks)
    best = np.empty((len(query), N_CANDIDATES), np.int64)
    top = np.empty((len(query), N_CANDIDATES), np.float32)
    for begin, scores in blocks:
        block = slice(begin, begin + len(scores))
        best[block] = best_columns(scores, N_CANDIDATES)
        top[block] = np.take_along_axis(scores, best[block], axis=1)
    return Candidates(ids[best].tolist(), top, np.full(len(query), -np.inf, np.float32))


def individual_scores(query: np.ndarray, catalogue: np.ndarray, catalogue_ids: Sequence[str], *, aggregate: str,
                      top_k: int, block_size: int = DEFAULT_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Every known individual's score for every query, as `rank_catalogue` ranks them: the
    sorted ids (I,) and the scores (Q, I) float32. What fusing with another method needs,
    which may favour an individual this one ranks low."""
    blocks = _individual_score_blocks(query, catalogue, catalogue_ids, aggregate, top_k, block_size)
    ids = next(blocks)
    scores = np.empty((len(query), len(ids)), np.float32)
    for begin, block in blocks:
        scores[begin:begin + len(block)] = block
    return ids, scores


def extend_catalogue(embeddings: np.ndarray, ids: Sequence[str], new_embeddings: np.ndarray,
                     new_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The catalogue (`embeddings`, `ids`) with the photos `new_embeddings` of `new_ids` added
    after it: a new individual, or more photos of a known one."""
    embeddings, new_embeddings = np.asarray(embeddings), np.asarray(new_embeddings)
    for name, array, names in (("catalogue", embeddings, ids), ("new", new_embeddings, new_ids)):
        if array.ndim != 2:
            raise ValueError(f"{name} embeddings must be a 2-D array (photos, dimensions), got shape {array.shape}")
        if len(names) != len(array):
            raise ValueError(f"{len(names)} {name} ids for {len(array)} {name} embeddings")
        not_text = [value for value in names if not isinstance(value, str)]
        if not_text:
            raise ValueError(f"{name} ids must be strings, got {len(not_text)} others, e.g. {not_text[:3]!r}")
    if new_embeddings.shape[1] != embeddings.shape[1]:
        raise ValueError(f"new embeddings of dimension {new_embeddings.shape[1]} for a catalogue of dimension "
                         f"{embeddings.shape[1]}: they must come from the same model")
    return np.concatenate([embeddings, new_embeddings]), [*ids, *new_ids]


def read_embeddings(embeddings_npy: str | Path, index_csv: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The embeddings (N, D) float32 and their index (row i names embedding i)."""
    embeddings = np.load(embeddings_npy)
    index = read_table(index_csv)
    if embeddings.ndim != 2 or len(embeddings) != len(index):
        raise ValueError(f"{embeddings_npy} holds an array of shape {embeddings.shape}, but {index_csv} "
                         f"lists {len(index)} images: expected one embedding row per image")
    return embeddings.astype(np.float32, copy=False), index


def identify(train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, phash_distances: Sequence[int],
             thresholds: Sequence[float], aggregate: str, top_k: int,
             additions: tuple[str | Path, str | Path] | None = None, reviewed: str | Path | None = None,
             encounters: str | Path | None = None) -> Identification:
    """The method's answers from the embeddings of train and test (each .npy with its index
    .csv): each search's queries ranked against its catalogue, then answered as every method is
    (`answers.answer`). `additions`: (embeddings .npy, index .csv with image, id) of the
    photos added to the test catalogue; `reviewed`: the test photos a person identified, which
    join it too, and `encounters` (`Queries.read`)."""
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed, encounters)
    train_embeddings, _ = read_embeddings(train_npy, train_index)
    test_embeddings, _ = read_embeddings(test_npy, test_index)
    queries.check_rows(len(train_embeddings), len(test_embeddings), train_npy, test_npy)
    added = read_embeddings(*additions) if additions else None

    def rank(search: Search) -> Candidates:
        catalogue, ids = search.catalogue_values(train_embeddings, test_embeddings), search.catalogue_ids
        if added is not None and search.split == "test":
            catalogue, ids = extend_catalogue(catalogue, ids, added[0], added[1]["id"].tolist())
            log.info("catalogue: %d train photos and %d added ones", len(search.catalogue), len(added[1]))
        return rank_catalogue(search.query_values(train_embeddings, test_embeddings), catalogue, ids,
                              aggregate=aggregate, top_k=top_k)

    return identify_with(rank, queries, phash_distances, thresholds, log)
