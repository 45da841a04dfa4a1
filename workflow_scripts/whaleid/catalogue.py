"""The catalogue of known individuals and the identification of photos against it, from
embeddings already computed (numpy only: no TensorFlow here).

Validation photos are identified against the `fit` part of train, as in training, so that the
new_whale threshold chosen on them is honest; test photos against all of train, plus any
photos added to the catalogue since (`add_to_catalogue`), which need no retraining.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .ranking import answer_validation_and_test
from .retrieval import add_to_catalogue, rank_catalogue
from .tables import fit_and_validation, read_table, with_hashes

log = logging.getLogger(__name__)


def read_embeddings(embeddings_npy: str | Path, index_csv: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The embeddings (N, D) float32 and their index (row i names embedding i)."""
    embeddings = np.load(embeddings_npy)
    index = read_table(index_csv)
    if embeddings.ndim != 2 or len(embeddings) != len(index):
        raise ValueError(f"{embeddings_npy} holds an array of shape {embeddings.shape}, but {index_csv} "
                         f"lists {len(index)} images: expected one embedding row per image")
    return embeddings.astype(np.float32, copy=False), index


def identify_splits(train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
                    split_csv: str | Path, manifest_csv: str | Path, phash_distances: Sequence[int],
                    thresholds: Sequence[float], *, additions: Sequence[str | Path] | None = None,
                    aggregate: str = "max", top_k: int = 1
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float]:
    """Validation and test answers (DataFrames image, answers: five ids), the validation curve
    (max_distance, threshold, map5, chosen) and the chosen new_whale threshold.

    Photos that are duplicates of catalogue photos (identical bytes, or a pHash within a
    distance of `phash_distances` bits, chosen on validation with the threshold) take their ids
    first; then the individuals by similarity, with new_whale where it falls below the
    threshold. `additions`: (embeddings .npy, index .csv) of photos added to the test catalogue.
    """
    train_embeddings, _ = read_embeddings(train_npy, train_index)
    manifest = read_table(manifest_csv)
    train, fit, validation_rows = fit_and_validation(train_index, split_csv, manifest, manifest_csv,
                                                     len(train_embeddings))
    validation = train.iloc[validation_rows]

    candidates = rank_catalogue(train_embeddings[validation_rows], train_embeddings[fit], train["id"][fit].tolist(),
                                aggregate=aggregate, top_k=top_k)

    test_embeddings, test_table = read_embeddings(test_npy, test_index)
    test = with_hashes(test_table[["image"]], manifest, "test", manifest_csv)
    catalogue, catalogue_ids = train_embeddings, train["id"].tolist()
    if additions:
        added, added_index = read_embeddings(*additions)
        catalogue, catalogue_ids = add_to_catalogue(catalogue, catalogue_ids, added, added_index["id"].tolist())
        log.info("catalogue: %d train photos and %d added ones", len(train), len(added_index))
    test_candidates = rank_catalogue(test_embeddings, catalogue, catalogue_ids, aggregate=aggregate, top_k=top_k)
    return answer_validation_and_test(validation, candidates, train[fit], test, test_candidates, train,
                                      phash_distances, thresholds, log)
