"""Labelled photos added to the metric-learning method's test catalogue, without retraining.

A folder in the layout of a dataset's train part (``train.csv`` with Image,Id, and ``train/``),
named by the setting ``metric_learning.catalogue_additions``: its photos are checked as ingest
checks train, preprocessed as the preprocess stage does, and embedded with the trained model;
identification (`retrieval.identify`) then matches the test photos against train and them.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed

from whaleid.data.ingest import REJECTED_COLUMNS, inspect_file, read_train_table, rejection
from whaleid.data.preprocess import build_cache
from whaleid.io.files import write_csv
from whaleid.methods.metric_learning.model import embed_array, load_embedder
from whaleid.vocabulary import NEW_WHALE

log = logging.getLogger(__name__)


def read_additions(labels_csv: str | Path, images_dir: str | Path, *, max_pixels: int, n_jobs: int = 1
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The usable photos of a folder of new labelled photos (image, id, width, height, sorted by
    image) and the rejected ones (image, source, row, reason), checked as ingest checks train.
    `new_whale` rows are rejected: they name no individual to add."""
    table, rejected = read_train_table(labels_csv)
    infos = Parallel(n_jobs=n_jobs, batch_size=32)(
        delayed(inspect_file)(Path(images_dir) / image, max_pixels) for image in table["image"])
    usable = []
    for (image, whale_id, row), info in zip(table[["image", "id", "row"]].itertuples(index=False), infos):
        if "error" in info:
            rejected.append(rejection(image, "additions", Path(labels_csv).name, row,
                                      f"{Path(images_dir).name}/{image}: {info['error']}"))
        elif whale_id == NEW_WHALE:
            rejected.append(rejection(image, "additions", Path(labels_csv).name, row,
                                      f"{NEW_WHALE} names no individual to add to the catalogue"))
        else:
            usable.append({"image": image, "id": whale_id, "width": info["width"], "height": info["height"]})
    photos = pd.DataFrame(usable, columns=["image", "id", "width", "height"]).sort_values("image")
    return photos.reset_index(drop=True), pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def embed_additions(labels_csv: str | Path, images_dir: str | Path, model_path: str | Path, *,
                    images_out: str | Path, embeddings_out: str | Path, index_out: str | Path,
                    rejected_out: str | Path, input_kind: str, size: int, max_pixels: int, batch_size: int,
                    views: int, chunk_size: int, preprocess_chunk_size: int, n_jobs: int) -> pd.DataFrame:
    """Check, preprocess (into `images_out`, as the preprocess stage does at `size`) and embed
    (into `embeddings_out`, rows named by `index_out`: image, id) the photos listed in
    `labels_csv` (Image,Id) and kept in `images_dir`, for retrieval to search beside train.
    Rejected rows go to `rejected_out`; none usable is an error. Returns the index."""
    if input_kind != "images":
        raise ValueError("photos can be added to the catalogue of an embedding trained on images only "
                         f"(metric_learning.input is {input_kind!r}): codes would need the autoencoder too")
    photos, rejected = read_additions(labels_csv, images_dir, max_pixels=max_pixels, n_jobs=n_jobs)
    for row in rejected.itertuples():
        log.warning("rejected %s (%s row %s): %s", row.image, row.source, row.row, row.reason)
    if photos.empty:
        raise ValueError(f"{labels_csv}: no usable photo of a known individual to add"
                         + (f"; first problem: row {rejected['row'].iloc[0]}: {rejected['reason'].iloc[0]}"
                            if len(rejected) else ""))
    build_cache([Path(images_dir) / image for image in photos["image"]], images_out, size=size, n_jobs=n_jobs,
                chunk_size=preprocess_chunk_size, sizes=list(zip(photos["width"], photos["height"])))
    embed_array(load_embedder(model_path), images_out, embeddings_out, batch_size=batch_size, views=views,
                chunk_size=chunk_size)
    write_csv(rejected, rejected_out)
    write_csv(photos[["image", "id"]], index_out)
    log.info("added %d photos of %d individuals to the catalogue", len(photos), photos["id"].nunique())
    return photos[["image", "id"]]
