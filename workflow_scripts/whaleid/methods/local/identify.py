"""The local method's identification of the validation and test photos.

Each search's queries are matched against its catalogue (`catalogue.match_queries`: a
shortlist by voting, then a geometric check) in chunks, each a job of its own (`match_chunk`,
rule local_match); once gathered (`identify`), each shortlisted individual is scored (`pooling`),
and each query's four best individuals by score (then inliers, then votes) are its
`candidates.Candidates`. The method then ends as every method does
(`answers.answer`): duplicates first, `new_whale` below a threshold chosen on
validation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.evaluation.submission import most_frequent_ids
from whaleid.identification.answers import Identification, answer, choose_on_validation
from whaleid.identification.candidates import Candidates, Individuals
from whaleid.identification.search import Queries, Search
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.chunks import chunk_rows, gather_tables
from whaleid.methods.local.keypoints import read_keypoints, read_weights
from whaleid.methods.local.pooling import POOLINGS, individual_scores, shortlist_candidates
from whaleid.settings import MatchSettings
from whaleid.vocabulary import LOCAL_SCORINGS, check_choice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalIdentification(Identification):
    """The local method's answers, with by split (validation, test): every verified pair
    (``pairs``: image, photo, id and the pair's statistics, and its ``probability`` where the
    verifier scored it) and every query's shortlisted individuals (``shortlists``: image, rank,
    id, votes, inliers, score, and where the verifier scored them the ``probability`` that each
    is the query's individual, which the fused method reads); and the poolings tried on
    validation (``poolings``: pooling, map5, threshold, chosen)."""

    pairs: dict[str, pd.DataFrame]
    shortlists: dict[str, pd.DataFrame]
    poolings: pd.DataFrame


def match_chunk(train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
                split_csv: str | Path, manifest_csv: str | Path, *, search: str, chunk: int, chunks: int,
                settings: MatchSettings, image_size: int, verifier=None, n_jobs: int,
                weights: tuple[str | Path, str | Path] | None = None, reviewed: str | Path | None = None,
                progress=None) -> pd.DataFrame:
    """Every verified pair of the queries of chunk `chunk` of `chunks` (`chunk_rows`) of the
    `search` (validation or test), matched against its catalogue (`match_queries`), from the
    keypoints of train and test (each .npy with its index .csv): ``query`` (the query's number
    in its search), ``image`` (its name), ``photo`` (the catalogue photo's name), ``id`` and the
    pair's statistics, and where `verifier` is given (a `verifier.Verifier`), its ``probability``.
    `weights`: the train and test keypoints' weights (`foreground`, .npy files), or None: all 1.
    `reviewed`: as `Queries.read` (encounters change how queries are answered, not how they
    match). `progress(done, total)` is told how far it is.

    Verification runs on `n_jobs` threads, and so do faiss's k-means and search, whatever cores
    the machine has: faiss sums in another order on another number of threads, and its inverted
    lists, and so the shortlists, would differ from machine to machine."""
    import faiss  # only the matching jobs need it

    faiss.omp_set_num_threads(n_jobs)
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed)
    train_keypoints, _ = read_keypoints(train_npy, train_index)
    test_keypoints, _ = read_keypoints(test_npy, test_index)
    queries.check_rows(len(train_keypoints), len(test_keypoints), train_npy, test_npy)
    train_weights, test_weights = (None, None) if weights is None else (
        read_weights(weights[0], train_keypoints), read_weights(weights[1], test_keypoints))
    searched = {found.split: found for found in queries.searches()}
    if search not in searched:
        raise ValueError(f"unknown search {search!r}: expected one of {', '.join(searched)}")
    searched = searched[search]
    ids = np.asarray(searched.catalogue_ids)
    catalogue = LocalCatalogue(searched.catalogue_values(train_keypoints, test_keypoints), ids, image_size, settings,
                               None if weights is None else searched.catalogue_values(train_weights, test_weights))
    rows = chunk_rows(len(searched.queries), chunk, chunks, settings.query_block)
    log.info("%s, queries %d to %d of %d (chunk %d of %d): catalogue of %d photos of %d individuals, %d descriptors",
             search, rows.start + 1, rows.stop, len(searched.queries), chunk, chunks, len(catalogue),
             len(catalogue.individuals), len(catalogue.photo_of_descriptor))
    in_chunk = slice(rows.start, rows.stop)
    found = match_queries(catalogue, searched.query_values(train_keypoints, test_keypoints, in_chunk),
                          None if weights is None else searched.query_values(train_weights, test_weights, in_chunk),
                          n_jobs=n_jobs, progress=progress)
    found["query"] += rows.start
    if verifier is not None:
        found["probability"] = verifier.probability(found)
    images = searched.queries["image"].to_numpy()
    catalogue_images = searched.catalogue["image"].to_numpy()[catalogue.photos]
    found.insert(0, "image", images[found["query"].to_numpy()])
    found["photo"] = catalogue_images[found["photo"].to_numpy()]
    return found


def identify(pairs: dict[str, Sequence[pd.DataFrame]], train_index: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, scoring: str, verifier=None,
             phash_distances: Sequence[int], thresholds: Sequence[float], reviewed: str | Path | None = None,
             encounters: str | Path | None = None) -> LocalIdentification:
    """The method's answers from each search's verified pairs (`pairs`: by search, the tables
    `match_chunk` gave for its chunks, in order): each shortlisted individual scored
    (`individual_scores`) by its inliers (`scoring` ``inliers``) or by its photos'
    probabilities from `verifier` (a `verifier.Verifier`), pooled as chosen on validation and
    calibrated to P(it is the query's individual) (``probability``); then answered as every
    method is, the new_whale threshold (of `thresholds`: inliers, or that probability) chosen on
    validation. `reviewed`, `encounters`: as `Queries.read`."""
    check_choice("scoring", scoring, LOCAL_SCORINGS)
    if (scoring == "verifier") != (verifier is not None):
        raise ValueError(f"scoring {scoring!r} with{'out' if verifier is None else ''} a verifier")
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed, encounters)
    searches = queries.searches()
    matched, fallback = {}, {}
    for search in searches:
        matched[search.split] = found = gather_tables(pairs[search.split])
        images, query = search.queries["image"].to_numpy(), found["query"].to_numpy()
        if len(found) and (query.max() >= len(images) or (images[query] != found["image"].to_numpy()).any()):
            raise ValueError(f"the {search.split} pairs name query photos that are not this search's: matched "
                             "with another validation split or test set; rerun local_match")
        fallback[search.split] = most_frequent_ids(search.catalogue_ids, len(Individuals.of(search.catalogue_ids).ids))

    def candidates(search: Search, pooling: str) -> tuple[pd.DataFrame, Candidates]:
        shortlists = individual_scores(matched[search.split], scoring, pooling)
        if verifier is None:
            return shortlists, shortlist_candidates(shortlists, len(search.queries), fallback[search.split])
        # P(the individual is the query's): the pooled score calibrated, strictly increasing, so
        # the ranking is the score's and the new_whale threshold is a probability
        shortlists["probability"] = verifier.individuals[pooling](shortlists["score"])
        return shortlists, shortlist_candidates(shortlists, len(search.queries), fallback[search.split], "probability")

    validation, test = searches
    tried, validation_by_pooling = [], {}
    for pooling in POOLINGS if scoring == "verifier" else ("max",):
        validation_by_pooling[pooling] = candidates(validation, pooling)
        choice = choose_on_validation(validation, validation_by_pooling[pooling][1], phash_distances, thresholds)
        tried.append((pooling, choice.map5, choice.threshold))
    poolings = pd.DataFrame(tried, columns=["pooling", "map5", "threshold"])
    best = int(np.argmax(poolings["map5"].to_numpy()))
    poolings["chosen"] = poolings.index == best
    pooling = poolings.loc[best, "pooling"]
    (validation_shortlists, validation_candidates), (test_shortlists, test_candidates) = (
        validation_by_pooling[pooling], candidates(test, pooling))
    answers = answer(queries, validation_candidates, test_candidates, phash_distances, thresholds, log)
    shortlists = {}
    for search, table in ((validation, validation_shortlists), (test, test_shortlists)):
        images = search.queries["image"].to_numpy()
        table = table.assign(image=images[table["query"].to_numpy()] if len(table) else [])
        shortlists[search.split] = table.drop(columns="query")[["image", *table.columns.drop(["image", "query"])]]
    pairs = {split: table.drop(columns=["query", "individual"]) for split, table in matched.items()}
    return LocalIdentification(answers.validation, answers.test, answers.curve, answers.chosen, pairs, shortlists,
                               poolings)
