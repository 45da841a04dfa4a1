"""The local method's identification: keypoint voting for a shortlist, then a geometric check.

For each query photo (its keypoints from `keypoints`):

1. **Shortlist by voting.** Each query descriptor's `neighbours` nearest catalogue descriptors
   are found in one approximate-nearest-neighbour index over the whole catalogue (faiss,
   inverted lists: a query visits `nprobe` of about 2*sqrt(catalogue descriptors) lists, so its
   cost grows with the square root of the catalogue, not with the number of photos). A
   neighbour votes for its photo's individual with how much closer it is than the query
   descriptor's next, (k+1)-th, neighbour (HotSpotter's LNBNN): a descriptor of water or
   glare, alike in many individuals, has near neighbours everywhere and so votes little.
   Each descriptor votes once per individual, with its best neighbour there.
2. **Geometric verification.** The `shortlist` individuals with most votes are checked: for
   each of its `photos_per_individual` photos with most votes, the query's descriptors are
   matched to that photo's (nearest neighbour, Lowe's ratio test), and RANSAC fits one
   transform (`similarity`, `affine` or `homography`) to the matches. The individual's score
   is its best photo's number of inliers: matches that agree on where the pattern lies.
   Chance matches rarely agree, so a low count says "no match" cleanly.

Descriptors are compared as RootSIFT (the square root of the L1-normalised SIFT vector), whose
Euclidean distance is the Hellinger kernel, better suited to histograms than plain SIFT's.

Each query's four best individuals by inliers (then votes) are its `identification.Candidates`,
and the method ends as every method does (`identification.answer`): duplicates first,
`new_whale` below an inlier threshold chosen on validation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..identification import N_CANDIDATES, Candidates, Identification, Individuals, Queries, Search, identify_with
from ..settings import MatchSettings
from ..submission import most_frequent_ids
from ..tables import read_table
from .keypoints import read_keypoint_cache, unpack

log = logging.getLogger(__name__)
# Below this many catalogue descriptors an exact search is as fast as inverted lists (whose
# k-means needs some 39 points a list to train on) and needs no training.
EXACT_SEARCH_BELOW = 50_000
# Inverted lists: LISTS_PER_ROOT * sqrt(descriptors) of them, their centres trained by k-means
# on TRAIN_PER_LIST descriptors a list (faiss warns below 39).
LISTS_PER_ROOT, TRAIN_PER_LIST = 2, 64
# Queries whose descriptors are searched at once: one faiss call keeps its threads busy.
QUERY_BLOCK = 64
# A fit needs this many matches to be tried at all (an affine fit needs 3, a homography 4).
MIN_MATCHES = 4


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT of SIFT `descriptors` (n, 128): the square root of each L1-normalised row, as
    float32 rows of unit L2 length (rows of zeros stay zeros)."""
    x = np.asarray(descriptors, np.float32)
    total = x.sum(axis=1, keepdims=True)
    return np.sqrt(np.divide(x, total, out=np.zeros_like(x), where=total > 0))


def ratio_matches(query_descriptors: np.ndarray, photos_descriptors: Sequence[np.ndarray], ratio: float
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lowe's ratio-test matches of a query's RootSIFT descriptors to each photo's: for each
    photo, (query rows, photo rows) of the query descriptors whose nearest photo descriptor is
    nearer than `ratio` times the second nearest.

    One matrix product against all the photos at once: descriptors are of unit length, so
    distances follow from dot products, and BLAS, unlike a loop of pairwise matchers, keeps every
    core busy and lets other threads run."""
    query = np.asarray(query_descriptors, np.float32)
    found = [(np.zeros(0, np.int64), np.zeros(0, np.int64))] * len(photos_descriptors)
    # photos with fewer than two descriptors have no second nearest to compare with
    usable = [i for i, d in enumerate(photos_descriptors) if len(d) >= 2]
    if len(query) == 0 or not usable:
        return found
    counts = np.array([len(photos_descriptors[i]) for i in usable])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    similarities = query @ np.concatenate([photos_descriptors[i] for i in usable]).astype(np.float32, copy=False).T
    # Each photo's nearest and second nearest, for all photos in a few whole-array passes.
    best = np.maximum.reduceat(similarities, starts, axis=1)
    photo_of_column = np.repeat(np.arange(len(usable)), counts)
    columns = np.where(similarities >= best[:, photo_of_column], np.arange(similarities.shape[1]),
                       similarities.shape[1])
    nearest = np.minimum.reduceat(columns, starts, axis=1)  # the first of equals
    rows = np.arange(len(query))[:, None]
    similarities[rows, nearest] = -np.inf
    second = np.maximum.reduceat(similarities, starts, axis=1)
    # |a - b|^2 = 2 - 2 a.b for unit vectors (RootSIFT); rounding can take it just below 0
    d1, d2 = np.sqrt(np.maximum(2 - 2 * best, 0)), np.sqrt(np.maximum(2 - 2 * second, 0))
    good = d1 < ratio * d2
    for k, photo in enumerate(usable):
        matched = np.flatnonzero(good[:, k])
        found[photo] = (matched, nearest[matched, k] - starts[k])
    return found


def fit_inliers(source: np.ndarray, target: np.ndarray, settings: MatchSettings, image_size: int) -> int:
    """How many matched positions (`source` in the query to `target` in a photo, pixels) agree on
    one `settings.transform`, by RANSAC; 0 where there are too few for a fit."""
    if len(source) < MIN_MATCHES:
        return 0
    source, target = np.asarray(source, np.float32), np.asarray(target, np.float32)
    tolerance = settings.reprojection_error * image_size
    if settings.transform == "homography":
        _, inliers = cv2.findHomography(source, target, cv2.RANSAC, tolerance, maxIters=settings.ransac_iterations)
    elif settings.transform == "affine":
        _, inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=tolerance,
                                          maxIters=settings.ransac_iterations)
    else:
        _, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                 ransacReprojThreshold=tolerance,
                                                 maxIters=settings.ransac_iterations)
    return 0 if inliers is None else int(inliers.sum())


def _descriptor_search(descriptors: np.ndarray, nprobe: int):
    """A faiss index over `descriptors` (n, 128) float32: exact below `EXACT_SEARCH_BELOW`,
    inverted lists (IVF-Flat, about 2*sqrt(n) of them, `nprobe` searched) above."""
    import faiss  # only the matching jobs need it

    dimensions = descriptors.shape[1]
    if len(descriptors) < EXACT_SEARCH_BELOW:
        index = faiss.IndexFlatL2(dimensions)
    else:
        n_lists = int(min(LISTS_PER_ROOT * math.sqrt(len(descriptors)), len(descriptors) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dimensions), dimensions, n_lists)
        # k-means on a sample: enough for the lists' centres, and the build's longest step otherwise
        rng = np.random.default_rng(0)
        sample = descriptors[rng.choice(len(descriptors), min(len(descriptors), TRAIN_PER_LIST * n_lists),
                                        replace=False)]
        index.train(sample)
        index.nprobe = min(nprobe, n_lists)
    index.add(descriptors)
    return index


class LocalCatalogue:
    """The catalogue's photos of known individuals, their keypoints and one descriptor index.

    `features`: (N, slots) keypoint records of the catalogue photos (`local_features`); `ids`:
    each photo's individual (new_whale photos are left out: they are of no one individual).
    """

    def __init__(self, features: np.ndarray, ids: Sequence[str], image_size: int, settings: MatchSettings):
        if len(ids) != len(features):
            raise ValueError(f"{len(ids)} catalogue ids for {len(features)} photos' keypoints")
        self.settings, self.image_size = settings, image_size
        grouped = Individuals.of(ids)
        self.photos, self.individuals, self.individual_of_photo = grouped.photos, grouped.ids, grouped.of_photo
        self.keypoints = [unpack(features[row]) for row in self.photos]
        self.keypoints = [(xy, root_sift(descriptors)) for xy, descriptors in self.keypoints]
        counts = np.array([len(xy) for xy, _ in self.keypoints])
        if not counts.sum():
            raise ValueError("no catalogue photo has keypoints: lower the contrast threshold or check the images")
        self.photo_of_descriptor = np.repeat(np.arange(len(self.photos)), counts)
        self.index = _descriptor_search(np.concatenate([d for _, d in self.keypoints]), settings.nprobe)
        # each individual's photos, in catalogue order: one sort, not a scan per individual
        self.photos_of_individual = grouped.members()

    def __len__(self) -> int:
        return len(self.photos)

    def votes(self, distances: np.ndarray, neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LNBNN votes (individuals,) and (photos,) of one query from its descriptors' squared
        distances to and positions of their k+1 nearest catalogue descriptors (faiss's output)."""
        k = neighbours.shape[1] - 1
        distance = np.sqrt(np.maximum(distances, 0))
        weight = np.maximum(distance[:, k:] - distance[:, :k], 0).ravel()
        found = neighbours[:, :k].ravel()
        valid = found >= 0
        photo = self.photo_of_descriptor[np.where(valid, found, 0)]
        weight = np.where(valid, weight, 0)
        descriptor = np.repeat(np.arange(len(neighbours)), k)
        photo_votes = _best_per_key(descriptor, photo, weight, len(self.photos))
        individual_votes = _best_per_key(descriptor, self.individual_of_photo[photo], weight, len(self.individuals))
        return individual_votes, photo_votes

    def verify(self, query_xy: np.ndarray, query_descriptors: np.ndarray, individual_votes: np.ndarray,
               photo_votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shortlist of one query (individual positions, most votes first), their votes
        and their inliers (best over the photos verified)."""
        shortlist = np.argsort(-individual_votes, kind="stable")[:self.settings.shortlist]
        checked = []  # (shortlist position, photo)
        for position, individual in enumerate(shortlist):
            photos = self.photos_of_individual[individual]
            photos = photos[np.argsort(-photo_votes[photos], kind="stable")[:self.settings.photos_per_individual]]
            checked += [(position, photo) for photo in photos]
        matches = ratio_matches(query_descriptors, [self.keypoints[photo][1] for _, photo in checked],
                                self.settings.ratio)
        inliers = np.zeros(len(shortlist), np.int64)
        for (position, photo), (rows, matched) in zip(checked, matches):
            found = fit_inliers(query_xy[rows], self.keypoints[photo][0][matched], self.settings, self.image_size)
            inliers[position] = max(inliers[position], found)
        return shortlist, individual_votes[shortlist], inliers


def _best_per_key(descriptor: np.ndarray, key: np.ndarray, weight: np.ndarray, n_keys: int) -> np.ndarray:
    """Sum over descriptors of each descriptor's best `weight` per `key` (photo or individual):
    a descriptor votes once for each key among its neighbours."""
    best = np.zeros(n_keys, np.float64)
    if not len(key):
        return best
    pair = descriptor.astype(np.int64) * n_keys + key
    order = np.lexsort((-weight, pair))
    first = np.r_[True, pair[order][1:] != pair[order][:-1]]
    np.add.at(best, key[order][first], weight[order][first])
    return best


def _verify_block(catalogue: LocalCatalogue, queries: list[tuple[np.ndarray, np.ndarray]],
                  votes: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [catalogue.verify(xy, descriptors, *vote) for (xy, descriptors), vote in zip(queries, votes)]


def match_queries(catalogue: LocalCatalogue, query_features: np.ndarray, *, n_jobs: int = 1,
                  progress=None) -> pd.DataFrame:
    """Every query photo's shortlist: a long table (query: row of `query_features`, rank from
    0, id, votes, inliers), ranked by inliers, then votes. Queries without keypoints get none.
    Verification runs on `n_jobs` threads (OpenCV releases the GIL); `progress(done, total)`."""
    settings = catalogue.settings
    k = min(settings.neighbours, len(catalogue.photo_of_descriptor) - 1)
    if k < 1:
        raise ValueError("the catalogue holds fewer than two descriptors to vote with")
    rows, n = [], len(query_features)
    if progress:
        progress(0, n)
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        for start in range(0, n, QUERY_BLOCK):
            queries = [unpack(row) for row in query_features[start:start + QUERY_BLOCK]]
            queries = [(xy, root_sift(descriptors)) for xy, descriptors in queries]
            counts = [len(xy) for xy, _ in queries]
            votes = [(np.zeros(len(catalogue.individuals)), np.zeros(len(catalogue)))] * len(queries)
            if sum(counts):
                distances, neighbours = catalogue.index.search(np.concatenate([d for _, d in queries]), k + 1)
                bounds = np.cumsum([0, *counts])
                votes = [catalogue.votes(distances[a:b], neighbours[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
            with_keypoints = [i for i, c in enumerate(counts) if c]
            parts = np.array_split(np.array(with_keypoints, int), max(1, min(n_jobs, len(with_keypoints))))
            results = parallel(delayed(_verify_block)(catalogue, [queries[i] for i in part], [votes[i] for i in part])
                               for part in parts if len(part))
            for part, result in zip([p for p in parts if len(p)], results):
                for i, (shortlist, individual_votes, inliers) in zip(part.tolist(), result):
                    order = np.lexsort((-individual_votes, -inliers))
                    rows.append(pd.DataFrame({"query": start + i, "rank": np.arange(len(order)),
                                              "id": catalogue.individuals[shortlist[order]],
                                              "votes": individual_votes[order], "inliers": inliers[order]}))
            if progress:
                progress(min(n, start + QUERY_BLOCK), n)
    columns = {"query": int, "rank": int, "id": str, "votes": float, "inliers": int}
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    return pd.concat(rows, ignore_index=True).sort_values(["query", "rank"], ignore_index=True)


def shortlist_candidates(shortlists: pd.DataFrame, n_queries: int, fallback: Sequence[str]) -> Candidates:
    """The `ranking.Candidates` of `n_queries` queries from their shortlists (`match_queries`):
    the four best individuals by inliers, scored by inliers. A query with fewer than four
    shortlisted (no keypoints, or a tiny catalogue) is filled from `fallback` (the catalogue's
    commonest individuals) with score -1, below any threshold tried."""
    ids = [[] for _ in range(n_queries)]
    top = np.full((n_queries, N_CANDIDATES), -1.0)
    for query, group in shortlists.sort_values(["query", "rank"]).groupby("query", sort=False):
        chosen = group.head(N_CANDIDATES)
        ids[int(query)] = chosen["id"].tolist()
        top[int(query), :len(chosen)] = chosen["inliers"].to_numpy(float)
    for row in ids:
        for individual in fallback:
            if len(row) == N_CANDIDATES:
                break
            if individual not in row:
                row.append(individual)
        if len(row) < N_CANDIDATES:
            raise ValueError(f"fewer than {N_CANDIDATES} individuals to answer with")
    return Candidates(ids, top, np.full(n_queries, -np.inf))


def read_keypoints(keypoints_npy: str | Path, index_csv: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """A split's keypoint records (memory-mapped) and their index (row i names photo i)."""
    keypoints = read_keypoint_cache(str(keypoints_npy))
    index = read_table(index_csv)
    if len(keypoints) != len(index):
        raise ValueError(f"{keypoints_npy} holds keypoints of {len(keypoints)} photos, but {index_csv} lists "
                         f"{len(index)}: expected one row per photo")
    return keypoints, index


@dataclass(frozen=True)
class LocalIdentification(Identification):
    """The local method's answers, with every query's verified ``shortlists`` by split
    (validation, test: image, rank, id, votes, inliers), which the fused method reads."""

    shortlists: dict[str, pd.DataFrame]


def identify(train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, settings: MatchSettings, image_size: int,
             phash_distances: Sequence[int], thresholds: Sequence[float], n_jobs: int,
             progress=None) -> LocalIdentification:
    """The method's answers from the keypoints of train and test (each .npy with its index
    .csv): each search's queries matched against its catalogue (`match_queries`), then answered
    as every method is, the new_whale threshold in inliers. `progress(label, done, total)` is
    told how far each split's matching is.

    Verification runs on `n_jobs` threads, and so do faiss's k-means and search, whatever cores
    the machine has: faiss sums in another order on another number of threads, and its inverted
    lists, and so the shortlists, would differ from machine to machine."""
    import faiss  # only the matching jobs need it

    faiss.omp_set_num_threads(n_jobs)
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv)
    train_keypoints, _ = read_keypoints(train_npy, train_index)
    test_keypoints, _ = read_keypoints(test_npy, test_index)
    queries.check_rows(len(train_keypoints), len(test_keypoints), train_npy, test_npy)
    shortlists: dict[str, pd.DataFrame] = {}

    def rank(search: Search) -> Candidates:
        ids = np.asarray(search.catalogue_ids)
        catalogue = LocalCatalogue(search.catalogue_values(train_keypoints), ids, image_size, settings)
        log.info("%s: catalogue of %d photos of %d individuals, %d descriptors", search.split, len(catalogue),
                 len(catalogue.individuals), len(catalogue.photo_of_descriptor))
        query_keypoints = search.query_values(train_keypoints, test_keypoints)
        found = match_queries(catalogue, query_keypoints, n_jobs=n_jobs,
                              progress=(lambda done, total: progress(search.split, done, total)) if progress else None)
        images = search.queries["image"].to_numpy()
        found = found.assign(image=images[found["query"].to_numpy()] if len(found) else [])
        shortlists[search.split] = found[["image", "rank", "id", "votes", "inliers"]]
        return shortlist_candidates(found, len(query_keypoints), most_frequent_ids(ids, len(catalogue.individuals)))

    answers = identify_with(rank, queries, phash_distances, thresholds, log)
    return LocalIdentification(answers.validation, answers.test, answers.curve, answers.chosen, shortlists)
