"""Who is asked, against which catalogue: the two searches every method answers.

Every method answers the same two searches (`Queries.searches`):

- **validation**: the train photos of subset ``validation`` against the ``fit`` photos only, as
  in training, so that every setting chosen on validation is chosen honestly: a validation
  photo never sees itself, nor another validation photo (of its own individual or any other);
- **test**: the test photos against all of train, never against another test photo, and the
  test photos a person identified (`read_reviewed`), which answer first with their own id.

The photos of one encounter (`read_encounters`) are answered together. numpy and pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.data.duplicates import duplicates_first
from whaleid.io.tables import read_table, train_table, with_hashes

# The review decisions that put a test photo in the catalogue (the rest: unsure).
IDENTIFIED = ("confirmed", "new")


@dataclass(frozen=True)
class Search:
    """One split's queries and the catalogue they are matched against.

    ``queries``: the query photos (image, phash, content_hash; and id, subset, truth for
    validation), their ``query_rows`` in their split's arrays (the train arrays for
    validation, the test arrays for test); ``catalogue``: the known photos (image, id, subset,
    truth, phash, content_hash), their ``catalogue_rows`` in the train arrays, then, in the
    test search, the ``reviewed_rows`` of the test arrays: the test photos a person identified
    (subset ``reviewed``).
    """

    split: str
    queries: pd.DataFrame
    query_rows: np.ndarray
    catalogue: pd.DataFrame
    catalogue_rows: np.ndarray
    reviewed_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def query_values(self, train_values: np.ndarray, test_values: np.ndarray, queries: slice = slice(None)
                     ) -> np.ndarray:
        """The queries' rows of a per-photo array of either split (embeddings, say): of
        `train_values` for validation, of `test_values` for test; of the `queries` only (a
        chunk's), read from a memory map without the others'."""
        return _rows_of(train_values if self.split == "validation" else test_values, self.query_rows[queries])

    def catalogue_values(self, train_values: np.ndarray, test_values: np.ndarray | None = None) -> np.ndarray:
        """The catalogue's rows of a per-photo array: of train, then of test (`test_values`)
        for the reviewed photos, where there are any."""
        values = _rows_of(train_values, self.catalogue_rows)
        if not len(self.reviewed_rows):
            return values
        if test_values is None:
            raise ValueError(f"the {self.split} catalogue holds {len(self.reviewed_rows)} reviewed test photos: "
                             "their values are needed too")
        return np.concatenate([values, test_values[self.reviewed_rows]])

    @property
    def catalogue_ids(self) -> list[str]:
        return self.catalogue["id"].tolist()


def _rows_of(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    # All the rows in order: the array itself, not a copy (a memory map stays one).
    if len(rows) == len(values) and np.array_equal(rows, np.arange(len(values))):
        return values
    return values[rows]


@dataclass(frozen=True)
class Queries:
    """Every photo a method answers or answers with.

    ``train``: one row per train photo in the order of the train arrays (image, id, subset,
    truth, phash, content_hash); ``test``: one row per test photo in the order of the test
    arrays (image, phash, content_hash). ``source`` names the split table in errors.
    ``reviewed``: the test photos a person identified (image, id; `read_reviewed`): they
    join the test search's catalogue, and answer first with their own id. ``encounters``: test
    photo to encounter (`read_encounters`): the photos of one encounter are of one animal, and
    are answered together (`encounter_groups`).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    source: str = "the validation split"
    reviewed: pd.DataFrame = field(default_factory=lambda: read_reviewed(None))
    encounters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for what, images in (("reviewed", self.reviewed["image"]), ("encounter", self.encounters)):
            unknown = sorted(set(images) - set(self.test["image"]))
            if unknown:
                raise ValueError(f"{len(unknown)} {what} photos are not test photos of this run, e.g. {unknown[:3]}")

    @classmethod
    def read(cls, train_index: str | Path, test_index: str | Path, split_csv: str | Path,
             manifest_csv: str | Path, reviewed_csv: str | Path | None = None,
             encounters_csv: str | Path | None = None) -> Queries:
        """The photos of a train and a test array (named by their index CSVs, column image),
        with their subset and truth (`split_csv`) and hashes (`manifest_csv`); `reviewed_csv`:
        the decided test photos (rule review_catalogue's reviewed.csv: image, id, decision), or
        None; `encounters_csv`: the data folder's encounters.csv (`read_encounters`), or None."""
        manifest = read_table(manifest_csv)
        train = with_hashes(train_table(train_index, split_csv), manifest, "train", manifest_csv)
        test = with_hashes(read_table(test_index)[["image"]], manifest, "test", manifest_csv)
        return cls(train, test, str(split_csv), read_reviewed(reviewed_csv),
                   read_encounters(encounters_csv, test["image"]))

    @classmethod
    def from_manifest(cls, manifest: pd.DataFrame, split: pd.DataFrame, source: str = "the validation split",
                      reviewed_csv: str | Path | None = None, encounters_csv: str | Path | None = None) -> Queries:
        """The train and test photos of the `manifest`, in its order, with the subset and truth
        of the train photos (from the `split` table): for a method that reads no array."""
        train = manifest[manifest["split"] == "train"].merge(split[["image", "subset", "truth"]], on="image")
        test = manifest[manifest["split"] == "test"].reset_index(drop=True)
        return cls(train.reset_index(drop=True), test, source, read_reviewed(reviewed_csv),
                   read_encounters(encounters_csv, test["image"]))

    def encounter_groups(self) -> list[np.ndarray]:
        """The test photos of each encounter of two or more, as positions in ``test``."""
        of_photo = self.test["image"].map(self.encounters).dropna()
        groups = of_photo.groupby(of_photo, sort=False).groups
        return [np.asarray(rows, np.int64) for rows in groups.values() if len(rows) > 1]

    def check_rows(self, train_rows: int, test_rows: int, train_source: str | Path, test_source: str | Path) -> None:
        """Raise ValueError unless the train and test arrays (`train_source`, `test_source`) have
        one row per photo."""
        for rows, photos, source in ((train_rows, self.train, train_source), (test_rows, self.test, test_source)):
            if rows != len(photos):
                raise ValueError(f"{source} has {rows} rows but its index lists {len(photos)} images: "
                                 "expected one row per image")

    @property
    def fit_rows(self) -> np.ndarray:
        return np.flatnonzero((self.train["subset"] == "fit").to_numpy())

    @property
    def validation_rows(self) -> np.ndarray:
        return np.flatnonzero((self.train["subset"] == "validation").to_numpy())

    def searches(self) -> tuple[Search, Search]:
        """The validation search (validation photos against the fit photos) and the test search
        (test photos against all of train)."""
        validation_rows, fit_rows = self.validation_rows, self.fit_rows
        if not len(validation_rows):
            raise ValueError(f"{self.source} has no validation images to choose the new_whale threshold on")
        everyone = np.arange(len(self.train))
        reviewed_rows = np.flatnonzero(self.test["image"].isin(self.reviewed["image"]).to_numpy())
        identity = dict(zip(self.reviewed["image"], self.reviewed["id"]))
        reviewed = self.test.iloc[reviewed_rows].assign(subset="reviewed")
        reviewed["id"] = reviewed["truth"] = reviewed["image"].map(identity)
        catalogue = pd.concat([self.train, reviewed[[c for c in self.train.columns if c in reviewed.columns]]],
                              ignore_index=True) if len(reviewed_rows) else self.train
        return (Search("validation", self.train.iloc[validation_rows], validation_rows, self.train.iloc[fit_rows],
                       fit_rows),
                Search("test", self.test, np.arange(len(self.test)), catalogue, everyone, reviewed_rows))

    def reviewed_first(self, test_answers: Sequence[Sequence[str]]) -> list[list[str]]:
        """The test answers, each reviewed photo's own id first (a person said who it is)."""
        if len(test_answers) != len(self.test):
            raise ValueError(f"{len(test_answers)} answer lists for {len(self.test)} test photos")
        identity = dict(zip(self.reviewed["image"], self.reviewed["id"]))
        return [duplicates_first([(0, identity[image])], list(row)) if image in identity else list(row)
                for image, row in zip(self.test["image"], test_answers)]


def read_encounters(encounters_csv: str | Path | None, test_images: Sequence[str]) -> dict[str, str]:
    """Test photo to encounter, from a CSV Image,Encounter (the data folder's optional
    encounters.csv); none for None. Raises ValueError naming the file and line of a row that
    names no photo or encounter, a photo that is not among `test_images`, or a photo in two
    encounters."""
    if encounters_csv is None:
        return {}
    table = read_table(encounters_csv)
    missing = [column for column in ("Image", "Encounter") if column not in table.columns]
    if missing:
        raise ValueError(f"{encounters_csv}: no {', '.join(missing)} column: expected a header Image,Encounter")
    known, encounters, line_of = set(test_images), {}, {}
    for line, (image, encounter) in enumerate(zip(table["Image"].str.strip(), table["Encounter"].str.strip()),
                                              start=2):
        where = f"{encounters_csv}, line {line}"
        if not image or not encounter:
            raise ValueError(f"{where}: a photo and its encounter are both needed")
        if image not in known:
            raise ValueError(f"{where}: {image!r} is not a test photo of this run")
        if encounters.get(image, encounter) != encounter:
            raise ValueError(f"{where}: {image} is in encounter {encounter!r}, but line {line_of[image]} puts it in "
                             f"{encounters[image]!r}")
        encounters[image], line_of[image] = encounter, line
    return encounters


def read_reviewed(reviewed_csv: str | Path | None) -> pd.DataFrame:
    """The test photos a person identified (image, id): the confirmed and new rows of a file of
    decisions (rule review_catalogue's reviewed.csv: image, id, decision); none for None."""
    if reviewed_csv is None:
        return pd.DataFrame(columns=["image", "id"])
    reviewed = read_table(reviewed_csv)
    missing = [c for c in ("image", "id", "decision") if c not in reviewed.columns]
    if missing:
        raise ValueError(f"{reviewed_csv}: no {', '.join(missing)} column")
    return reviewed.loc[reviewed["decision"].isin(IDENTIFIED), ["image", "id"]].reset_index(drop=True)
