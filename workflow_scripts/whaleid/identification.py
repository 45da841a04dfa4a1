"""Identification, as every method does it: who is asked, against which catalogue, and how a
method's scores become five answers.

Every method answers the same two searches (`Queries.searches`):

- **validation**: the train photos of subset ``validation`` against the ``fit`` photos only, as
  in training, so that every setting chosen on validation is chosen honestly: a validation
  photo never sees itself, nor another validation photo (of its own individual or any other);
- **test**: the test photos against all of train, never against another test photo.

A method is a function from a `Search` to `Candidates`: each query's four best known
individuals, best first, with a score each (a classifier's probabilities, a retrieval's cosine
similarities, a keypoint match's inliers). `answer` then ends every method the same way:
photos that are duplicates of catalogue photos (identical bytes, or a pHash within a distance
of a few bits) keep those ids first; `new_whale` goes at the first rank whose score falls below
a threshold; the duplicate distance and the threshold are chosen together on validation by
MAP@5 and applied to test unchanged. The result is an `Identification`.

numpy and pandas only, so that a method without TensorFlow can use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .duplicates import Duplicates, duplicate_matches, duplicates_first, within
from .files import write_csv
from .ingest import NEW_WHALE
from .metrics import map_at_5
from .submission import N_ANSWERS, write_predictions
from .tables import read_table, train_table, with_hashes

# Four known individuals and new_whale make the five answers.
N_CANDIDATES = N_ANSWERS - 1

SPLITS = ("validation", "test")
# The review decisions that put a test photo in the catalogue (the rest: unsure).
IDENTIFIED = ("confirmed", "new")


def check_known_individuals(count: int, what: str) -> None:
    """Five distinct answers need `N_CANDIDATES` known individuals besides new_whale: raise
    ValueError, naming `what` holds too few, where `count` is less."""
    if count < N_CANDIDATES:
        raise ValueError(f"{what}: {count} known individuals; five distinct answers need at least {N_CANDIDATES}")


# ---------------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Individuals:
    """The known individuals among a catalogue's photos; new_whale photos are of no one
    individual and belong to none.

    ``ids`` (I,): the individuals, sorted; ``photos`` (P,): the catalogue positions of their
    photos, in catalogue order; ``of_photo`` (P,): each of those photos' individual, a position
    in ``ids``.
    """

    ids: np.ndarray
    photos: np.ndarray
    of_photo: np.ndarray

    @classmethod
    def of(cls, catalogue_ids: Sequence[str], *, enough_for_answers: bool = True,
           what: str = "the catalogue") -> Individuals:
        """The individuals of the catalogue photos whose ids are `catalogue_ids`; with
        `enough_for_answers`, too few for five answers raise ValueError (`check_known_individuals`)."""
        ids = np.asarray(catalogue_ids, dtype=str)
        if ids.ndim != 1:
            raise ValueError(f"catalogue ids must be a vector, got shape {ids.shape}")
        photos = np.flatnonzero(ids != NEW_WHALE)
        individuals, of_photo = np.unique(ids[photos], return_inverse=True)
        if enough_for_answers:
            check_known_individuals(len(individuals), what)
        return cls(individuals, photos, of_photo.reshape(-1))

    @property
    def counts(self) -> np.ndarray:
        """How many photos each individual has."""
        return np.bincount(self.of_photo, minlength=len(self.ids))

    def by_individual(self) -> np.ndarray:
        """Positions in ``photos`` sorted by individual, each individual's in catalogue order:
        individual i's photos are the run of `counts`[i] from the sum of the counts before it."""
        return np.argsort(self.of_photo, kind="stable")

    def members(self) -> list[np.ndarray]:
        """Each individual's photos, as positions in ``photos``, in catalogue order."""
        return np.split(self.by_individual(), np.cumsum(self.counts)[:-1])


# ---------------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidates:
    """Each query's four best known ids (``ids``, best first), their scores (``top``, (N, 4))
    and the score of new_whale itself (``own``, (N,)).

    A classifier's scores are probabilities and ``own`` is the probability of its new_whale
    class (zeros when it has none); a retrieval's scores are cosine similarities and ``own`` is
    -inf, since there no photo stands for new_whale.
    """

    ids: list[list[str]]
    top: np.ndarray
    own: np.ndarray


def best_columns(scores: np.ndarray, n: int) -> np.ndarray:
    """The column indices of each row's `n` highest `scores`, highest first; ties go to the
    lower column."""
    n_columns = scores.shape[1]
    nth_highest = np.partition(scores, n_columns - n, axis=1)[:, n_columns - n]
    # Usually n candidates per row; more where scores tie with the n-th: sorting them all by
    # (row, -score, column) settles the order without a per-row loop.
    rows, columns = np.nonzero(scores >= nth_highest[:, None])
    order = np.lexsort((columns, -scores[rows, columns], rows))
    rows, columns = rows[order], columns[order]
    first = np.searchsorted(rows, np.arange(len(scores)))
    return columns[first[:, None] + np.arange(n)]


def candidates_from_scores(scores: np.ndarray, individuals: Sequence[str]) -> Candidates:
    """The `Candidates` of a (queries, individuals) score matrix whose columns are
    `individuals`: each row's four best (ties to the earlier column); ``own`` is -inf."""
    best = best_columns(scores, N_CANDIDATES) if len(scores) else np.zeros((0, N_CANDIDATES), np.int64)
    return Candidates(np.asarray(individuals)[best].tolist(), np.take_along_axis(scores, best, axis=1),
                      np.full(len(scores), -np.inf, np.float32))


def insert_new_whale(candidates: Candidates, threshold: float) -> list[list[str]]:
    """Five answers per image: its candidates with `new_whale` at the first rank whose
    candidate's score is below `threshold`, or below new_whale's own score where that is
    higher; fifth if none is."""
    below = candidates.top < np.maximum(float(threshold), candidates.own)[:, None]
    position = np.where(below.any(axis=1), below.argmax(axis=1), N_ANSWERS - 1)
    return [row[:at] + [NEW_WHALE] + row[at:] for row, at in zip(candidates.ids, position.tolist())]


def final_answers(candidates: Candidates, threshold: float, duplicates: Duplicates | None = None) -> list[list[str]]:
    """`insert_new_whale`, with each image's `duplicates` ((distance, id) pairs, as
    `duplicates.duplicate_matches` finds them) ahead, if given."""
    answers = insert_new_whale(candidates, threshold)
    if duplicates is None:
        return answers
    if len(duplicates) != len(answers):
        raise ValueError(f"{len(duplicates)} duplicate lists for {len(answers)} images")
    return [duplicates_first(found, row) for found, row in zip(duplicates, answers)]


def sweep_new_whale_threshold(candidates: Candidates, truths: Sequence[str], thresholds: Sequence[float],
                              duplicates: Duplicates | None = None) -> tuple[float, pd.DataFrame]:
    """The new_whale threshold with the best MAP@5 of `final_answers` against `truths` (the
    first of equals, in the order given), and the curve (threshold, map5, chosen)."""
    if not len(thresholds):
        raise ValueError("no thresholds to try")
    scores = [map_at_5(final_answers(candidates, t, duplicates), truths) for t in thresholds]
    best = int(np.argmax(scores))
    curve = pd.DataFrame({"threshold": [float(t) for t in thresholds], "map5": scores})
    curve["chosen"] = curve.index == best
    return float(thresholds[best]), curve


def sweep_duplicates_and_threshold(candidates: Candidates, truths: Sequence[str], thresholds: Sequence[float],
                                   duplicates: Duplicates, max_distances: Sequence[int]
                                   ) -> tuple[int, float, pd.DataFrame]:
    """The pHash distance up to which `duplicates` (found up to the largest of `max_distances`)
    come first, and the new_whale threshold, with the best MAP@5 of `final_answers` together;
    among equals the smallest distance, then the first threshold. Returns them and the curve
    (max_distance, threshold, map5, chosen).

    Chosen for each method rather than taken from the baseline: the baseline has nothing else
    to answer with, so it gains from loose matches that push a good model's right answer down.
    """
    if not len(max_distances):
        raise ValueError("no duplicate distances to try")
    curves = []
    for distance in sorted(max_distances):
        _, curve = sweep_new_whale_threshold(candidates, truths, thresholds, within(duplicates, distance))
        curves.append(curve.drop(columns="chosen").assign(max_distance=int(distance)))
    curve = pd.concat(curves, ignore_index=True)[["max_distance", "threshold", "map5"]]
    best = int(np.argmax(curve["map5"].to_numpy()))
    curve["chosen"] = curve.index == best
    return int(curve.loc[best, "max_distance"]), float(curve.loc[best, "threshold"]), curve


# ---------------------------------------------------------------------------------- searches


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

    def query_values(self, train_values: np.ndarray, test_values: np.ndarray) -> np.ndarray:
        """The queries' rows of a per-photo array of either split (embeddings, say): of
        `train_values` for validation, of `test_values` for test."""
        return _rows_of(train_values if self.split == "validation" else test_values, self.query_rows)

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


def pool_candidates(candidates: Candidates, groups: Sequence[np.ndarray]) -> Candidates:
    """`candidates` with each group's photos (an encounter's) given the same four: each
    individual scored by its best score over the group's photos (each photo's four best), the
    best four, ties in the order first seen; new_whale's own score the group's lowest, so that a
    known individual any photo matches well is not outvoted."""
    ids, top, own = [list(row) for row in candidates.ids], candidates.top.copy(), candidates.own.copy()
    for members in groups:
        best: dict[str, float] = {}
        for member in members:
            for individual, score in zip(candidates.ids[member], candidates.top[member]):
                best[individual] = max(best.get(individual, -np.inf), float(score))
        ranked = sorted(best.items(), key=lambda item: -item[1])[:N_CANDIDATES]
        for member in members:
            ids[member] = [individual for individual, _ in ranked]
            top[member] = [score for _, score in ranked]
            own[member] = candidates.own[members].min()
    return Candidates(ids, top, own)


def pool_duplicates(duplicates: Duplicates, groups: Sequence[np.ndarray]) -> Duplicates:
    """Each group's photos (an encounter's) given the duplicates of them all, nearest first."""
    pooled = [list(found) for found in duplicates]
    for members in groups:
        nearest: dict[str, int] = {}
        for member in members:
            for distance, individual in duplicates[member]:
                nearest[individual] = min(nearest.get(individual, distance), distance)
        shared = sorted(((distance, individual) for individual, distance in nearest.items()), key=lambda m: m[0])
        for member in members:
            pooled[member] = shared
    return pooled


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


# ---------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Choice:
    """What validation chose: the pHash distance up to which duplicates come first, the
    new_whale threshold, the curve of every pair tried (max_distance, threshold, map5, chosen),
    its best MAP@5, and the validation queries' duplicates within the chosen distance."""

    max_distance: int
    threshold: float
    curve: pd.DataFrame
    map5: float
    duplicates: list[list[tuple[int, str]]]


def choose_on_validation(search: Search, candidates: Candidates, phash_distances: Sequence[int],
                         thresholds: Sequence[float]) -> Choice:
    """The duplicate distance (of `phash_distances`) and new_whale threshold (of `thresholds`)
    with the best MAP@5 of the validation `search`'s answers from `candidates`, together (see
    `sweep_duplicates_and_threshold`). Duplicates are looked for in the search's catalogue."""
    duplicates = duplicate_matches(search.queries, search.catalogue, max(phash_distances))
    distance, threshold, curve = sweep_duplicates_and_threshold(
        candidates, search.queries["truth"].tolist(), thresholds, duplicates, phash_distances)
    return Choice(distance, threshold, curve, float(curve.loc[curve["chosen"], "map5"].iloc[0]),
                  within(duplicates, distance))


@dataclass(frozen=True)
class Identification:
    """A method's answers: ``validation`` and ``test`` (image, answers: five ids each), the
    validation ``curve`` its setting was chosen on, and what was ``chosen``: the new_whale
    threshold (the baseline, which has none, chooses its pHash distance)."""

    validation: pd.DataFrame
    test: pd.DataFrame
    curve: pd.DataFrame
    chosen: float

    def write(self, validation_csv: str | Path, test_csv: str | Path, curve_csv: str | Path) -> None:
        """The curve, and the answers of both splits as checked Kaggle-style predictions."""
        write_csv(self.curve, curve_csv)
        write_predictions(validation_csv, self.validation["image"], self.validation["answers"])
        write_predictions(test_csv, self.test["image"], self.test["answers"])


def answer(queries: Queries, validation_candidates: Candidates, test_candidates: Candidates,
           phash_distances: Sequence[int], thresholds: Sequence[float], logger: logging.Logger | None = None
           ) -> Identification:
    """How every method ends: the duplicate distance and the new_whale threshold chosen
    together on the validation search, then both splits answered with them (duplicates of each
    search's own catalogue first). The test photos of one encounter are answered together
    (`pool_candidates`, `pool_duplicates`); those a person identified, with their own id first."""
    validation, test = queries.searches()
    choice = choose_on_validation(validation, validation_candidates, phash_distances, thresholds)
    validation_answers = final_answers(validation_candidates, choice.threshold, choice.duplicates)
    if logger is not None:
        logger.info("duplicates up to %d pHash bits first, new_whale threshold %g: validation MAP@5 %.4f",
                    choice.max_distance, choice.threshold, choice.map5)
    # the photos of one encounter pool their evidence, and are answered together
    groups = queries.encounter_groups()
    test_answers = queries.reviewed_first(final_answers(
        pool_candidates(test_candidates, groups), choice.threshold,
        pool_duplicates(duplicate_matches(test.queries, test.catalogue, choice.max_distance), groups)))
    return Identification(pd.DataFrame({"image": validation.queries["image"].tolist(), "answers": validation_answers}),
                          pd.DataFrame({"image": test.queries["image"].tolist(), "answers": test_answers}),
                          choice.curve, choice.threshold)


def identify_with(rank: Callable[[Search], Candidates], queries: Queries, phash_distances: Sequence[int],
                  thresholds: Sequence[float], logger: logging.Logger | None = None) -> Identification:
    """A method, `rank`, run on both of the `queries`' searches and answered as `answer` says."""
    validation, test = queries.searches()
    return answer(queries, rank(validation), rank(test), phash_distances, thresholds, logger)
