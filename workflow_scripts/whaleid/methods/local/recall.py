"""How often the local method's shortlist holds the right individual, by how many catalogue photos it has.

A verifier can only reorder what voting shortlisted. An individual with many catalogue photos
is shortlisted far more often than one with a single photo, and a validation split drawn from
individuals with several photos hides how often the second kind is missed, although on Kaggle
and in a new survey most known photos are of individuals seen once or twice. So recall, and
how often the right individual is ranked first, are counted per number of catalogue photos
(`CATALOGUE_PHOTO_BINS`), on validation and on test where its truth is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.io.tables import read_table
from whaleid.vocabulary import NEW_WHALE

# (fewest, most, label) catalogue photos of the right individual
CATALOGUE_PHOTO_BINS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 8, "5-8"), (9, np.inf, "9+"))


def shortlist_recall(shortlists: pd.DataFrame, truths: Mapping[str, str], catalogue_ids: Sequence[str]
                     ) -> pd.DataFrame:
    """Of the query photos whose individual (`truths`, image to id) is in the catalogue (the
    ids of its photos, `catalogue_ids`), the share whose shortlist (`shortlists`: image, rank,
    id) holds it (``recall``) and ranks it first (``top1``), by the number of catalogue photos
    it has (``catalogue_photos``, a bin of `CATALOGUE_PHOTO_BINS`, then ``all``), with the
    number of such ``queries``."""
    counts = pd.Series(np.asarray(catalogue_ids, dtype=str)).value_counts()
    counts = counts.drop(NEW_WHALE, errors="ignore")
    known = {image: truth for image, truth in truths.items() if truth in counts.index}
    listed = shortlists[shortlists["image"].isin(known.keys())]
    is_truth = listed["id"].to_numpy() == listed["image"].map(known).to_numpy()
    found = set(listed.loc[is_truth, "image"])
    first = set(listed.loc[is_truth & (listed["rank"].to_numpy() == 0), "image"])
    table = pd.DataFrame({"image": list(known), "photos": [counts[truth] for truth in known.values()]})
    table["recall"] = table["image"].isin(found)
    table["top1"] = table["image"].isin(first)
    rows = []
    for low, high, label in (*CATALOGUE_PHOTO_BINS, (1, np.inf, "all")):
        chosen = table[(table["photos"] >= low) & (table["photos"] <= high)]
        rows.append((label, len(chosen), chosen["recall"].mean() if len(chosen) else np.nan,
                     chosen["top1"].mean() if len(chosen) else np.nan))
    return pd.DataFrame(rows, columns=["catalogue_photos", "queries", "recall", "top1"])


def splits_recall(validation_shortlists: str | Path, test_shortlists: str | Path, split_csv: str | Path,
                  test_truth_csv: str | Path | None) -> pd.DataFrame:
    """`shortlist_recall` of the validation queries (against the fit photos) and, where
    `test_truth_csv` is given, of the test queries (against all of train), one table with a
    ``split`` column first."""
    split = read_table(split_csv)
    fit = split[split["subset"] == "fit"]
    validation = split[split["subset"] == "validation"]
    truths = dict(zip(validation["image"], validation["truth"]))
    tables = [shortlist_recall(_read_shortlists(validation_shortlists), truths, fit["id"]).assign(split="validation")]
    if test_truth_csv is not None:
        truth = read_table(test_truth_csv)
        tables.append(shortlist_recall(_read_shortlists(test_shortlists), dict(zip(truth["Image"], truth["Id"])),
                                       split["id"]).assign(split="test"))
    table = pd.concat(tables, ignore_index=True)
    return table[["split", *table.columns[:-1]]]


def _read_shortlists(path: str | Path) -> pd.DataFrame:
    return read_table(path).astype({"rank": int})
