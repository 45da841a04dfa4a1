"""The workflow's CSV tables as the stages read them: any table with its strings as they are,
the train rows with their subset and truth, and the photos' hashes. pandas only, so that a
stage without TensorFlow can use them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV with every column as strings."""
    # Ids and image names are strings, whatever they look like ("NA", "0001").
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def train_table(index_csv: str | Path, split_csv: str | Path, n_rows: int | None = None) -> pd.DataFrame:
    """Per row of a train array (listed by `index_csv`; `n_rows`, where given, checked): image,
    id, subset, truth (from `split_csv`)."""
    index = read_table(index_csv)
    if n_rows is not None and len(index) != n_rows:
        raise ValueError(f"{index_csv} lists {len(index)} images but the array has {n_rows} rows")
    split = read_table(split_csv)
    table = index[["image"]].merge(split[["image", "id", "subset", "truth"]], on="image", how="left",
                                   validate="one_to_one")
    missing = table.loc[table["subset"].isna(), "image"].tolist()
    if missing:
        raise ValueError(f"{len(missing)} images of {index_csv} are not in {split_csv}, e.g. {missing[:3]}")
    return table


def with_hashes(table: pd.DataFrame, manifest: pd.DataFrame, split: str, manifest_csv: str | Path) -> pd.DataFrame:
    """`table` with the pHash and content hash of its images (from the manifest rows of `split`;
    `manifest_csv` names the manifest in errors)."""
    photos = manifest.loc[manifest["split"] == split, ["image", "phash", "content_hash"]].set_index("image")
    table = table.join(photos, on="image")
    missing = table.loc[table["phash"].isna(), "image"].tolist()
    if missing:
        raise ValueError(f"{len(missing)} {split} images are not in {manifest_csv}, e.g. {missing[:3]}")
    return table
