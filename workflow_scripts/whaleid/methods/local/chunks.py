"""The local method's per-photo and per-query work shared out into chunks, each a job of its own.

Snakemake's `scattergather:` names a chunk ``<chunk>-of-<chunks>`` (`parse_chunk`). Queries
are matched in blocks of `MatchSettings.query_block` (each block's descriptors searched in one
faiss call, whose exact search computes its distances by matrix products over the whole block),
so a chunk is always whole blocks: a query is searched with the same other queries whatever the
chunk count, and every count gives the same bytes.

Keypoint extraction shares out a split's photos, and identification a search's queries
(`chunk_rows`: whole blocks of the preprocessing's chunk size, or of the query block); the
foreground model and the verifier, which ask the fit photos fold by fold against the other folds
(`FitFolds`), share out the blocks of every fold's asked photos (`FitFolds.chunk`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def parse_chunk(scatteritem: str) -> tuple[int, int]:
    """Snakemake's scatter item ``3-of-8`` as (3, 8)."""
    chunk, of, chunks = scatteritem.partition("-of-")
    if not of or not chunk.isdigit() or not chunks.isdigit():
        raise ValueError(f"scatter item {scatteritem!r}: expected <chunk>-of-<chunks>, e.g. 3-of-8")
    return int(chunk), int(chunks)


def _share(n_items: int, chunk: int, chunks: int) -> range:
    """Chunk `chunk` (from 1) of `chunks` of `n_items` items in order, as even as they go."""
    if not 1 <= chunk <= chunks:
        raise ValueError(f"chunk {chunk} of {chunks}: expected 1 to {chunks}")
    return range((chunk - 1) * n_items // chunks, chunk * n_items // chunks)


def chunk_rows(n_rows: int, chunk: int, chunks: int, block: int) -> range:
    """The rows (queries, photos) of chunk `chunk` (from 1) of `chunks`: whole blocks of `block` rows."""
    blocks = _share(math.ceil(n_rows / block), chunk, chunks)
    return range(blocks.start * block, min(blocks.stop * block, n_rows))


@dataclass(frozen=True)
class FitFolds:
    """Fit photos dealt at random into folds (``fold_of``), and those asked (``chosen``: at most
    `max_queries`, drawn at random), each against the photos of the other folds."""

    fold_of: np.ndarray
    chosen: np.ndarray

    @classmethod
    def draw(cls, n_photos: int, folds: int, max_queries: int | None, seed: int) -> FitFolds:
        if folds < 2:
            raise ValueError(f"folds must be at least 2, got {folds}")
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(n_photos) % folds
        chosen = np.zeros(n_photos, bool)
        chosen[rng.permutation(n_photos)[:n_photos if max_queries is None else max_queries]] = True
        return cls(fold_of, chosen)

    @property
    def folds(self) -> int:
        return int(self.fold_of.max()) + 1 if len(self.fold_of) else 0

    def asked(self, fold: int) -> np.ndarray:
        """The rows of the photos fold `fold` asks."""
        return np.flatnonzero((self.fold_of == fold) & self.chosen)

    def catalogue_rows(self, fold: int) -> np.ndarray:
        """The rows of the photos fold `fold`'s photos are asked against: the other folds'."""
        return np.flatnonzero(self.fold_of != fold)

    def chunk(self, chunk: int, chunks: int, block: int) -> list[tuple[int, np.ndarray]]:
        """Of chunk `chunk` (from 1) of `chunks`: each fold it has a part of, with the rows of
        its asked photos there, in order. The blocks of `block` asked photos of every fold, one
        after the other, are shared out whole and as evenly as they go; a fold with no photo
        to ask has none."""
        blocks = [(fold, start) for fold in range(self.folds)
                  for start in range(0, len(self.asked(fold)), block)]
        mine = [blocks[n] for n in _share(len(blocks), chunk, chunks)]
        parts = []
        for fold in dict.fromkeys(fold for fold, _ in mine):
            starts = [start for of, start in mine if of == fold]
            parts.append((fold, self.asked(fold)[starts[0]:starts[-1] + block]))
        return parts


def gather_tables(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The tables of a step's chunks, in order, as one: those with rows (a chunk with none has
    columns of no particular type), or the first where none has any."""
    if not tables:
        raise ValueError("no chunk's table to gather")
    filled = [table for table in tables if len(table)]
    return pd.concat(filled, ignore_index=True) if filled else tables[0].reset_index(drop=True)
