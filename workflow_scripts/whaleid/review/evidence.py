"""What speaks for each of a method's answers, for people to look at: the gallery and the review page.

A method's answer is shown by the catalogue photo that speaks for it, with the method's score
(`Evidence`); what that photo is depends on the method (`method_evidence`):

- ``metric_learning``: the individual's catalogue photo most similar to the query, and that
  cosine similarity (`embedding_evidence`);
- ``local``: the individual's verified photo the verifier found likeliest (or with most inliers,
  where it scores by inliers), and the individual's calibrated probability (`keypoint_evidence`),
  drawn beside the query with its inlier matches, as Wildbook's reviewers see them;
- ``fused``: the local method's verified photo, or where keypoints verified none, the
  embedding's most similar; and the fused probability;
- any other (baseline, classifier), on the review page: each answer's first catalogue photo.

The queries are those every method answered (`gallery_queries`): validation photos against the
fit photos, test photos against all of train and the photos a person identified. How sure an
answer is (`confidence`): how far rank 1 lies past the new_whale threshold, in the method's
score. numpy and pandas only: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.evaluation.submission import read_predictions
from whaleid.identification.candidates import Individuals
from whaleid.identification.search import Queries, read_reviewed
from whaleid.io.tables import read_table, train_table
from whaleid.methods.metric_learning.retrieval import DEFAULT_BLOCK_SIZE, extend_catalogue, normalise, read_embeddings
from whaleid.vocabulary import NEW_WHALE

# Where a split's inlier matches are drawn from: (split, query row, catalogue row) to lines
# (n, 4: query x, y, catalogue photo x, y, each a share of its square's side).
Matches = Callable[[str, int, int], np.ndarray]


@dataclass(frozen=True)
class Photos:
    """Photos of one or more splits: ``names``, ``ids`` (the individual, or new_whale) and
    ``squares``, each photo's preprocessed square (a memory-mapped view, read only when its
    thumbnail is made)."""

    names: list[str]
    ids: list[str]
    squares: list[np.ndarray]

    def __post_init__(self):
        if not len(self.names) == len(self.ids) == len(self.squares):
            raise ValueError(f"{len(self.names)} names, {len(self.ids)} ids and {len(self.squares)} squares: "
                             "expected one of each per photo")

    def subset(self, rows: np.ndarray) -> Photos:
        rows = np.asarray(rows, dtype=np.int64)
        return Photos([self.names[r] for r in rows], [self.ids[r] for r in rows], [self.squares[r] for r in rows])

    def extended(self, names: Sequence[str], ids: Sequence[str], squares: Sequence[np.ndarray]) -> Photos:
        return Photos([*self.names, *names], [*self.ids, *ids], [*self.squares, *squares])


@dataclass(frozen=True)
class Evidence:
    """What speaks for each answer of each query, as the method saw it: ``photo`` (Q, A) rows
    of the catalogue (-1: none), ``score`` (Q, A) the method's score of that individual for
    that query (NaN: none), ``best_known`` (Q,) the query's best score of any known individual
    (NaN: none), and for a method that verifies keypoints, ``verified`` (Q, A): whether the
    photo is one it matched geometrically (None otherwise)."""

    photo: np.ndarray
    score: np.ndarray
    best_known: np.ndarray
    verified: np.ndarray | None = None


def with_truths(answers: Sequence[Sequence[str]], truths: Sequence[str]) -> list[list[str]]:
    """Each query's answers with its truth after them: the truth's own photo is looked up too."""
    if len(answers) != len(truths):
        raise ValueError(f"{len(answers)} answer lists for {len(truths)} truths")
    return [[*row, truth] for row, truth in zip(answers, truths)]


def match_answers(queries: np.ndarray, answers: Sequence[Sequence[str]], catalogue: np.ndarray,
                  catalogue_ids: Sequence[str], *, block_size: int = DEFAULT_BLOCK_SIZE
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query embedding and each of its `answers` (ids, best first), the catalogue
    photo of that individual most similar to the query and its cosine similarity; and each
    query's best similarity to any photo of a known individual.

    Returns `photo` (Q, A) int64 catalogue rows (-1 for new_whale and for ids without a
    catalogue photo), `score` (Q, A) float32 (NaN where `photo` is -1) and `best_known` (Q,)
    float32 (NaN where the catalogue has no known photo). Photos of new_whale never stand for
    anyone. Queries are compared `block_size` at a time, which bounds the memory used.
    """
    queries, catalogue = normalise(queries), normalise(catalogue)
    if catalogue.shape[1] != queries.shape[1]:
        raise ValueError(f"query embeddings of dimension {queries.shape[1]} but catalogue embeddings of dimension "
                         f"{catalogue.shape[1]}: they must come from the same model")
    ids = np.asarray(catalogue_ids, dtype=str)
    if ids.ndim != 1 or len(ids) != len(catalogue):
        raise ValueError(f"{len(ids)} catalogue ids for {len(catalogue)} catalogue embeddings")
    if len(answers) != len(queries):
        raise ValueError(f"{len(answers)} answer lists for {len(queries)} query embeddings")
    width = max((len(row) for row in answers), default=0)
    grouped = Individuals.of(ids, enough_for_answers=False)
    known = grouped.photos
    photos_of = {individual: known[members] for individual, members in zip(grouped.ids.tolist(), grouped.members())}

    photo = np.full((len(queries), width), -1, np.int64)
    score = np.full((len(queries), width), np.nan, np.float32)
    best_known = np.full(len(queries), np.nan, np.float32)
    for begin in range(0, len(queries), block_size):
        similarities = queries[begin:begin + block_size] @ catalogue.T
        if len(known):
            best_known[begin:begin + len(similarities)] = similarities[:, known].max(axis=1)
        for offset, row in enumerate(similarities):
            for rank, individual in enumerate(answers[begin + offset]):
                columns = photos_of.get(individual)
                if columns is None:
                    continue
                best = columns[int(np.argmax(row[columns]))]
                photo[begin + offset, rank], score[begin + offset, rank] = best, row[best]
    return photo, score, best_known


def embedding_evidence(queries: np.ndarray, answers: Sequence[Sequence[str]], catalogue: np.ndarray,
                       catalogue_ids: Sequence[str]) -> Evidence:
    """The metric-learning method's `Evidence`: `match_answers`."""
    return Evidence(*match_answers(queries, answers, catalogue, catalogue_ids))


def keypoint_evidence(images: Sequence[str], answers: Sequence[Sequence[str]], catalogue_names: Sequence[str],
                      pairs: pd.DataFrame, scores: pd.DataFrame, score: str) -> Evidence:
    """The `Evidence` of a method that verifies keypoints, for the query `images` and their
    `answers`: each answer's verified photo with the highest ``probability`` (or, where `pairs`
    have no probability, most ``foreground_inliers``, or ``inliers``: what the method scored)
    among `pairs` (image, id, photo: a name among `catalogue_names`, inliers[,
    foreground_inliers][, probability]), and its score, the `score` column of
    `scores` (image, id, `score`: the individuals the method ranked). An answer without a
    verified photo has photo -1 and ``verified`` False; one not in `scores`, a NaN score."""
    if len(images) != len(answers):
        raise ValueError(f"{len(answers)} answer lists for {len(images)} query images")
    if score not in scores.columns:
        raise ValueError(f"no {score!r} column to show among the method's scores ({', '.join(scores.columns)})")
    rank_by = next(column for column in ("probability", "foreground_inliers", "inliers") if column in pairs.columns)
    best = (pairs.astype({rank_by: float}).sort_values([rank_by, "photo"], ascending=[False, True], kind="stable")
            .drop_duplicates(["image", "id"]).set_index(["image", "id"])["photo"])
    scored = scores.astype({score: float}).drop_duplicates(["image", "id"]).set_index(["image", "id"])[score]
    row_of = {name: row for row, name in enumerate(catalogue_names)}
    unknown = sorted(set(best) - set(row_of))
    if unknown:
        raise ValueError(f"{len(unknown)} verified photos are not in the catalogue, e.g. {unknown[:3]}")
    width = max((len(row) for row in answers), default=0)
    photo = np.full((len(images), width), -1, np.int64)
    value = np.full((len(images), width), np.nan)
    for q, (image, row) in enumerate(zip(images, answers)):
        for rank, individual in enumerate(row):
            name = best.get((image, individual))
            if name is not None:
                photo[q, rank] = row_of[name]
            value[q, rank] = scored.get((image, individual), np.nan)
    best_known = scored.groupby(level="image").max().reindex(list(images)).to_numpy(np.float64)
    return Evidence(photo, value, best_known, photo >= 0)


def first_photos(answers: Sequence[Sequence[str]], catalogue_ids: Sequence[str]) -> Evidence:
    """Each answer's first catalogue photo, scores unknown: who an individual is, where nothing
    better speaks for it."""
    first = {}
    for row, individual in enumerate(catalogue_ids):
        if individual != NEW_WHALE:
            first.setdefault(individual, row)
    width = max((len(row) for row in answers), default=0)
    photo = np.full((len(answers), width), -1, np.int64)
    for q, row in enumerate(answers):
        photo[q, :len(row)] = [first.get(individual, -1) for individual in row]
    return Evidence(photo, np.full(photo.shape, np.nan), np.full(len(answers), np.nan))


def with_fallback_photos(evidence: Evidence, fallback: Evidence) -> Evidence:
    """`evidence` with `fallback`'s photo wherever it has none (its scores and its ``verified``
    kept): where keypoints verified no photo, the embedding's most similar (or any of its
    photos) still shows who the individual is."""
    photo = np.where(evidence.photo >= 0, evidence.photo, fallback.photo)
    return Evidence(photo, evidence.score, evidence.best_known, evidence.verified)


def confidence(first_answer: str, first_score: float, best_known: float, threshold: float) -> float:
    """How far the rank-1 answer lies past the new_whale threshold: its score minus the
    threshold, or for new_whale the threshold minus the best score of a known individual.
    NaN where the score is unknown."""
    return float(threshold - best_known) if first_answer == NEW_WHALE else float(first_score - threshold)


def chosen_threshold(curve_csv: str | Path) -> float:
    """The new_whale threshold marked chosen in a threshold curve (columns threshold, chosen)."""
    curve = read_table(curve_csv)
    chosen = curve.loc[curve["chosen"].str.lower() == "true", "threshold"]
    if len(chosen) != 1:
        raise ValueError(f"{curve_csv}: expected one row chosen, found {len(chosen)}")
    return float(chosen.iloc[0])


def read_squares(array_npy: str | Path, index_csv: str | Path) -> dict[str, np.ndarray]:
    """Each image's preprocessed square, by name: views of the memory-mapped array (read only
    when used)."""
    array = np.load(array_npy, mmap_mode="r")
    index = read_table(index_csv)
    if len(index) != len(array):
        raise ValueError(f"{index_csv} lists {len(index)} images but {array_npy} holds {len(array)}")
    return {image: array[row] for row, image in enumerate(index["image"])}


def _photos(names: Sequence[str], ids: Sequence[str], squares: dict[str, np.ndarray], source: str) -> Photos:
    missing = [name for name in names if name not in squares]
    if missing:
        raise ValueError(f"{len(missing)} images have no preprocessed square in {source}, e.g. {missing[:3]}")
    return Photos(list(names), list(ids), [squares[name] for name in names])


def _answers_of(images: Sequence[str], predictions: dict[str, list[str]], source: str) -> list[list[str]]:
    missing = [image for image in images if image not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} images have no answers in {source}, e.g. {missing[:3]}")
    return [predictions[image] for image in images]


def _rows_of(names: Sequence[str], index: pd.DataFrame, source: str) -> np.ndarray:
    """The rows of `index` (image column) that hold `names`, in their order."""
    row_of = pd.Series(np.arange(len(index)), index=index["image"].to_numpy())
    missing = [name for name in names if name not in row_of.index]
    if missing:
        raise ValueError(f"{len(missing)} images are not in {source}, e.g. {missing[:3]}")
    return row_of.loc[list(names)].to_numpy(np.int64)


@dataclass(frozen=True)
class GalleryQueries:
    """The queries a gallery may show, by split (validation, and test where its truth is
    known): ``queries`` (Photos whose ids are their truths), ``catalogues`` (what each split
    was answered from: the fit photos of train, all of train) and the method's ``answers``; and
    every photo's square by name (``squares``), for photos that joined a catalogue in a run."""

    queries: dict[str, Photos]
    catalogues: dict[str, Photos]
    answers: dict[str, list[list[str]]]
    squares: dict[str, np.ndarray] = field(default_factory=dict)


def gallery_queries(*, split_csv: str | Path, train_images: str | Path, train_images_index: str | Path,
                    test_images: str | Path, test_images_index: str | Path, validation_predictions: str | Path,
                    test_predictions: str | Path, test_truth: str | Path | None = None,
                    reviewed: str | Path | None = None, every_test_photo: bool = False) -> GalleryQueries:
    """The `GalleryQueries` of a run: validation photos against the fit photos, as every
    method answered them; test photos with a truth in `test_truth` (a CSV Image,Id) against all
    of train and the photos a person identified (`reviewed`, as `search.Queries.read`
    reads it). With `every_test_photo`, every test photo is a query, its truth new_whale where
    `test_truth` does not give it. Test photos rejected at ingest have a truth but no square:
    they cannot be shown."""
    train_squares = read_squares(train_images, train_images_index)
    test_squares = read_squares(test_images, test_images_index)
    train = train_table(train_images_index, split_csv, len(train_squares))
    validation_search, test_search = Queries(train, read_table(test_images_index)[["image"]], str(split_csv),
                                             read_reviewed(reviewed)).searches()
    # every known photo: train's, then the test photos a person identified
    everyone = test_search.catalogue
    squares = {**test_squares, **train_squares}
    known_photos = _photos(everyone["image"].tolist(), everyone["id"].tolist(), squares, str(train_images))
    validation = known_photos.subset(validation_search.query_rows)
    validation = Photos(validation.names, validation_search.queries["truth"].tolist(), validation.squares)
    queries = {"validation": validation}
    catalogues = {"validation": known_photos.subset(validation_search.catalogue_rows)}
    answers = {"validation": _answers_of(validation.names, read_predictions(validation_predictions),
                                         str(validation_predictions))}
    if test_truth or every_test_photo:
        truth = read_table(test_truth) if test_truth else pd.DataFrame(columns=["Image", "Id"])
        truth = dict(zip(truth["Image"], truth["Id"]))
        names = [name for name in test_search.queries["image"] if every_test_photo or name in truth]
        queries["test"] = _photos(names, [truth.get(name, NEW_WHALE) for name in names], test_squares,
                                  str(test_images))
        catalogues["test"] = known_photos
        answers["test"] = _answers_of(names, read_predictions(test_predictions), str(test_predictions))
    return GalleryQueries(queries, catalogues, answers, squares)


@dataclass(frozen=True)
class EmbeddingFiles:
    """The metric-learning embeddings of train and test (each .npy with its index .csv) and,
    where photos were added to the catalogue, the additions (embeddings .npy, index .csv with
    image and id, preprocessed squares .npy)."""

    train: str | Path
    train_index: str | Path
    test: str | Path
    test_index: str | Path
    additions: tuple[str | Path, str | Path, str | Path] | None = None


@dataclass(frozen=True)
class KeypointFiles:
    """The local method's keypoints of train and test (each .npy with its index .csv), and how
    it matched them (`settings.MatchSettings`, on the `image_size` square), to draw inliers."""

    train: str | Path
    train_index: str | Path
    test: str | Path
    test_index: str | Path
    image_size: int
    settings: object


def _embedding_evidence(found: GalleryQueries, files: EmbeddingFiles, *, extend: bool
                        ) -> tuple[dict[str, Evidence], dict[str, Photos]]:
    """Each split's `embedding_evidence`, and its catalogue, the test one with the additions
    where `extend` (the metric-learning method answered with them)."""
    train, train_index = read_embeddings(files.train, files.train_index)
    test, test_index = read_embeddings(files.test, files.test_index)
    # a test catalogue's reviewed photos are test photos: catalogue photos are looked up in both
    known = np.concatenate([train, test])
    known_index = pd.concat([train_index[["image"]], test_index[["image"]]], ignore_index=True)
    catalogues = dict(found.catalogues)
    evidence = {}
    for split, queries in found.queries.items():
        source, source_index, source_csv = ((train, train_index, files.train_index) if split == "validation"
                                            else (test, test_index, files.test_index))
        query_embeddings = source[_rows_of(queries.names, source_index, str(source_csv))]
        catalogue = catalogues[split]
        embeddings = known[_rows_of(catalogue.names, known_index, f"{files.train_index} or {files.test_index}")]
        ids = catalogue.ids
        if split == "test" and extend and files.additions:
            added_npy, added_csv, added_images = files.additions
            added, added_index = read_embeddings(added_npy, added_csv)
            added_squares = np.load(added_images, mmap_mode="r")
            if len(added_squares) != len(added):
                raise ValueError(f"{added_images} holds {len(added_squares)} images for {len(added)} embeddings "
                                 f"in {added_npy}")
            embeddings, ids = extend_catalogue(embeddings, ids, added, added_index["id"].tolist())
            catalogue = catalogue.extended(added_index["image"].tolist(), added_index["id"].tolist(),
                                           [added_squares[row] for row in range(len(added_squares))])
            catalogues[split] = catalogue
        evidence[split] = embedding_evidence(query_embeddings, with_truths(found.answers[split], queries.ids),
                                             embeddings, ids)
    return evidence, catalogues


def _keypoint_matches(found: GalleryQueries, files: KeypointFiles, catalogues: dict[str, Photos]) -> Matches:
    """Draws a pair's inliers (`geometry.inlier_matches`) from the keypoint caches."""
    from whaleid.methods.local.geometry import inlier_matches
    from whaleid.methods.local.keypoints import read_keypoints

    train, train_index = read_keypoints(files.train, files.train_index)
    test, test_index = read_keypoints(files.test, files.test_index)
    train_row = dict(zip(train_index["image"], range(len(train_index))))
    test_row = dict(zip(test_index["image"], range(len(test_index))))

    def matches(split: str, query: int, photo: int) -> np.ndarray:
        name = found.queries[split].names[query]
        query_features = train[train_row[name]] if split == "validation" else test[test_row[name]]
        photo_name = catalogues[split].names[photo]
        # a test catalogue's reviewed and pseudo-labelled photos are test photos
        photo_features = train[train_row[photo_name]] if photo_name in train_row else test[test_row[photo_name]]
        query_xy, photo_xy = inlier_matches(query_features, photo_features, files.settings, files.image_size)
        return np.hstack([query_xy, photo_xy]) / files.image_size

    return matches


def evidence_files(inputs, matching: dict | None) -> dict:
    """The keyword arguments of `method_evidence` from a rule's named `inputs` (as
    rules/common.smk's `evidence_input` names them: embeddings_train.npy, keypoints_test.csv,
    pairs_validation, scores_test, additions...) and `matching` (image_size and the
    `settings.MatchSettings` values, where keypoints are drawn)."""
    from whaleid.settings import MatchSettings

    given = set(inputs.keys())
    files = {}
    if "embeddings_train.npy" in given:
        files["embeddings"] = EmbeddingFiles(inputs["embeddings_train.npy"], inputs["embeddings_train.csv"],
                                             inputs["embeddings_test.npy"], inputs["embeddings_test.csv"],
                                             tuple(inputs["additions"]) if "additions" in given else None)
    if "keypoints_train.npy" in given:
        files["keypoints"] = KeypointFiles(inputs["keypoints_train.npy"], inputs["keypoints_train.csv"],
                                           inputs["keypoints_test.npy"], inputs["keypoints_test.csv"],
                                           matching["image_size"], MatchSettings(**matching["settings"]))
        files["pairs"] = {split: inputs[f"pairs_{split}"] for split in ("validation", "test")}
        if "pseudo_labels" in given:
            files["pseudo_labels"] = inputs["pseudo_labels"]
        files["scores"] = {split: inputs[f"scores_{split}"] for split in ("validation", "test")}
    return files


@dataclass(frozen=True)
class MethodEvidence:
    """What speaks for a method's answers, by split (`Evidence`), the catalogues its photos are
    rows of, how its scores are named (a key of SCORES), how to draw a verified pair's inliers
    (None: the method verifies nothing) and the caption of an answer no keypoint verified;
    and the photos self-training put in the catalogues, by split (name: round)."""

    evidence: dict[str, Evidence]
    catalogues: dict[str, Photos]
    score_name: str
    matches: Matches | None = None
    unverified: str = "not verified"
    # by split, the catalogue photos that are queries self-training accepted: name to round
    pseudo_labelled: dict[str, dict[str, int]] = field(default_factory=dict)


def method_evidence(method: str, found: GalleryQueries, *, embeddings: EmbeddingFiles | None = None,
                    keypoints: KeypointFiles | None = None, pairs: dict[str, str | Path] | None = None,
                    scores: dict[str, str | Path] | None = None, pseudo_labels: str | Path | None = None,
                    any_method: bool = False) -> MethodEvidence:
    """The `MethodEvidence` of `method`'s answers to the `found` queries, with their truths:
    from `embeddings` (``metric_learning``, whose test catalogue includes its additions), or
    from the verified `pairs` and the individuals' `scores` of each split (``local``: its
    shortlists; ``fused``: its candidates, with the `embeddings`' most similar photo where
    keypoints verified none), drawn with their inliers from `keypoints`; the queries the local
    method's self-training accepted (`pseudo_labels`: split, image, id, round) are catalogue
    photos of their split there, with the id they were given. With `any_method`, a
    method that is none of these (baseline, classifier) is shown by each answer's first
    catalogue photo, scores unknown."""
    catalogues, matches, unverified, pseudo_labelled = found.catalogues, None, "not verified", {}
    if method == "metric_learning":
        if embeddings is None:
            raise ValueError("the metric-learning evidence needs the embeddings")
        evidence, catalogues = _embedding_evidence(found, embeddings, extend=True)
        score_name = "similarity"
    elif method in ("local", "fused"):
        if keypoints is None or pairs is None or scores is None or (method == "fused" and embeddings is None):
            raise ValueError(f"the {method} evidence needs the keypoints, the verified pairs, the individuals' scores"
                             + (" and the embeddings" if method == "fused" else ""))
        if pseudo_labels is not None:
            catalogues, pseudo_labelled = _with_pseudo_labelled(found, read_table(pseudo_labels), str(pseudo_labels))
        evidence = {}
        for split, queries in found.queries.items():
            ranked = read_table(scores[split])
            score = "probability" if "probability" in ranked.columns else "score"
            score_name = "probability" if score == "probability" else "inliers"
            evidence[split] = keypoint_evidence(queries.names, with_truths(found.answers[split], queries.ids),
                                                catalogues[split].names, read_table(pairs[split]), ranked, score)
        if method == "fused":
            fallback, _ = _embedding_evidence(found, embeddings, extend=False)
            unverified = "no keypoint match: the embedding's most similar photo"
        else:
            fallback = {split: first_photos(with_truths(found.answers[split], queries.ids), catalogues[split].ids)
                        for split, queries in found.queries.items()}
            unverified = "no keypoint match: one of its photos"
        evidence = {split: with_fallback_photos(evidence[split], fallback[split]) for split in evidence}
        matches = _keypoint_matches(found, keypoints, catalogues)
    elif any_method:
        evidence = {split: first_photos(with_truths(found.answers[split], queries.ids), catalogues[split].ids)
                    for split, queries in found.queries.items()}
        score_name = "score"
    else:
        raise ValueError(f"no candidate gallery for method {method!r}: expected metric_learning, local or fused")
    return MethodEvidence(evidence, catalogues, score_name, matches, unverified, pseudo_labelled)


def _with_pseudo_labelled(found: GalleryQueries, labels: pd.DataFrame, source: str
                          ) -> tuple[dict[str, Photos], dict[str, dict[str, int]]]:
    """`found`'s catalogues with the queries self-training accepted (`labels`: split, image, id,
    round) as photos of the ids it gave them, and those photos' rounds by split."""
    catalogues, rounds = dict(found.catalogues), {}
    for split, catalogue in found.catalogues.items():
        given = labels[labels["split"] == split]
        missing = sorted(set(given["image"]) - set(found.squares))
        if missing:
            raise ValueError(f"{source}: {len(missing)} pseudo-labelled photos of {split} have no square, "
                             f"e.g. {missing[:3]}")
        names = given["image"].tolist()
        catalogues[split] = catalogue.extended(names, given["id"].tolist(), [found.squares[name] for name in names])
        rounds[split] = dict(zip(names, given["round"].astype(int)))
    return catalogues, rounds
