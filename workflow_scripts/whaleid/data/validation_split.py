"""A local validation split that mirrors the Kaggle test set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from whaleid.vocabulary import NEW_WHALE


def make_validation_split(train: pd.DataFrame, *, single_image_fraction: float,
                          new_whale_fraction: float, seed: int) -> pd.DataFrame:
    """Assign each train image to `fit` or `validation` and give its validation truth.

    As in the test set, validation holds known individuals and unknown ones:
    - every id with two or more images gives one image to validation (truth: that id);
    - `single_image_fraction` of the ids with one image go to validation whole; with no photo
      left in `fit` they are unknown there, so their truth is `new_whale`;
    - `new_whale_fraction` of the `new_whale` images go to validation (truth `new_whale`).
    Deterministic for a given `seed` and set of images, whatever their order in train.csv.

    `train` has columns image, id; the result adds `subset` and `truth`.
    """
    rng = np.random.default_rng(seed)
    table = train[["image", "id"]].sort_values("image").reset_index(drop=True)
    table["subset"] = "fit"
    table["truth"] = table["id"]

    known = table[table["id"] != NEW_WHALE]
    counts = known["id"].value_counts()
    multi_ids = sorted(counts[counts >= 2].index)
    for whale_id in multi_ids:
        images = table.index[table["id"] == whale_id]
        table.loc[rng.choice(images), "subset"] = "validation"

    single_ids = sorted(counts[counts == 1].index)
    n_single = round(len(single_ids) * single_image_fraction)
    chosen = rng.choice(single_ids, size=n_single, replace=False) if n_single else []
    moved = table["id"].isin(set(chosen))
    table.loc[moved, ["subset", "truth"]] = ["validation", NEW_WHALE]

    new_whales = table.index[table["id"] == NEW_WHALE]
    n_new = round(len(new_whales) * new_whale_fraction)
    if n_new:
        table.loc[rng.choice(new_whales, size=n_new, replace=False), "subset"] = "validation"
    return table
