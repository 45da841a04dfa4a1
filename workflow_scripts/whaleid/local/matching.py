"""The local method's identification: keypoint voting for a shortlist, then a geometric check.

For each query photo (its keypoints from `keypoints`):

1. **Shortlist by voting.** Each query descriptor's `neighbours` nearest catalogue descriptors
   are found in one approximate-nearest-neighbour index over the whole catalogue (faiss,
   inverted lists: a query visits `nprobe` of about 2*sqrt(catalogue descriptors) lists, so its
   cost grows with the square root of the catalogue, not with the number of photos). A
   neighbour votes for its photo's individual with how much closer it is than the query
   descriptor's next, (k+1)-th, neighbour (HotSpotter's LNBNN): a descriptor of water or
   glare, alike in many individuals, has near neighbours everywhere and so votes little.
   Each descriptor votes once per photo and once per individual, with its best neighbour there.
   The `shortlist` individuals with most votes are kept: by `shortlist_by` ``photo``, an
   individual has its best photo's votes, so twenty middling photos do not outvote one good
   one; by ``individual``, the votes of all its photos.
2. **Geometric verification.** For each shortlisted individual's `photos_per_individual`
   photos with most votes, the query's descriptors are matched to that photo's (nearest
   neighbour, Lowe's ratio test), and RANSAC fits one transform (`similarity`, `affine` or
   `homography`) to the matches: inliers are matches that agree on where the pattern lies.
   Each pair's statistics are recorded (`VERIFIED_COLUMNS`, `with_query_context`).
3. **Scoring** (`individual_scores`). An individual's score is its best photo's inlier count
   (`scoring` ``inliers``), or its photos' probabilities of being of the query's individual,
   which a verifier learned from fit photos reads off those statistics (``verifier``,
   `verifier.Verifier`), pooled.

Where each keypoint has a weight (`foreground`: how likely it lies on the animal, not on rocks
that recur in other individuals' photos taken at the same place), a vote counts by both its
keypoints' weights multiplied, and so does an inlier (``foreground_inliers``, which the
``inliers`` scoring and the verifier read). Without weights every keypoint weighs 1, and
``foreground_inliers`` is the inlier count.

Descriptors are compared as RootSIFT (the square root of the L1-normalised SIFT vector), whose
Euclidean distance is the Hellinger kernel, better suited to histograms than plain SIFT's.

Each query's four best individuals by score (then inliers, then votes) are its
`identification.Candidates`, and the method ends as every method does
(`identification.answer`): duplicates first, `new_whale` below a threshold chosen on validation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..identification import (N_CANDIDATES, Candidates, Identification, Individuals, Queries, Search, answer,
                              choose_on_validation)
from ..pretrained import check_choice
from ..settings import LOCAL_SCORINGS, MatchSettings
from ..submission import most_frequent_ids
from ..tables import read_table
from .keypoints import read_keypoint_cache, unpack, unpack_weights

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
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Lowe's ratio-test matches of a query's RootSIFT descriptors to each photo's: for each
    photo, (query rows, photo rows, distance ratios) of the query descriptors whose nearest
    photo descriptor is nearer than `ratio` times the second nearest, and by how much (the
    nearest's distance over the second's: the lower, the more distinctive the match).

    One matrix product against all the photos at once: descriptors are of unit length, so
    distances follow from dot products, and BLAS, unlike a loop of pairwise matchers, keeps every
    core busy and lets other threads run."""
    query = np.asarray(query_descriptors, np.float32)
    found = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(photos_descriptors)
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
        found[photo] = (matched, nearest[matched, k] - starts[k], (d1[matched, k] / d2[matched, k]).astype(np.float32))
    return found


def fit_transform(source: np.ndarray, target: np.ndarray, settings: MatchSettings, image_size: int
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Which matched positions (`source` in the query to `target` in a photo, pixels) agree on
    one `settings.transform`, by RANSAC: a boolean mask, and the transform (2x3, or 3x3 for a
    homography; None where there were too few matches for a fit or none was found)."""
    none = np.zeros(len(source), bool), None
    if len(source) < MIN_MATCHES:
        return none
    source, target = np.asarray(source, np.float32), np.asarray(target, np.float32)
    tolerance = settings.reprojection_error * image_size
    if settings.transform == "homography":
        matrix, inliers = cv2.findHomography(source, target, cv2.RANSAC, tolerance, maxIters=settings.ransac_iterations)
    elif settings.transform == "affine":
        matrix, inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=tolerance,
                                               maxIters=settings.ransac_iterations)
    else:
        matrix, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                      ransacReprojThreshold=tolerance,
                                                      maxIters=settings.ransac_iterations)
    if inliers is None or matrix is None:
        return none
    return inliers.ravel().astype(bool), matrix


def fit_inliers(source: np.ndarray, target: np.ndarray, settings: MatchSettings, image_size: int) -> int:
    """How many matched positions agree on one transform (`fit_transform`); 0 where there are
    too few for a fit."""
    return int(fit_transform(source, target, settings, image_size)[0].sum())


def hull_share(points: np.ndarray, image_size: int) -> float:
    """The share of the `image_size` square that the convex hull of `points` covers: inliers
    spread over the whole pattern say more than as many bunched in one spot."""
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(np.asarray(points, np.float32)))) / image_size ** 2


def scale_and_rotation(matrix: np.ndarray | None) -> tuple[float, float]:
    """How much a fitted transform scales (the square root of its linear part's determinant)
    and turns (degrees); NaN where there is none. A homography is read at its linear part."""
    if matrix is None:
        return math.nan, math.nan
    linear = np.asarray(matrix, np.float64)[:2, :2]
    if matrix.shape[0] == 3 and matrix[2, 2]:
        linear = linear / matrix[2, 2]
    return math.sqrt(abs(np.linalg.det(linear))), math.degrees(math.atan2(linear[1, 0], linear[0, 0]))


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
    each photo's individual (new_whale photos are left out: they are of no one individual);
    `weights`: (N, slots) each keypoint's weight (`foreground`: how likely it lies on the
    animal), or None: all 1.
    """

    def __init__(self, features: np.ndarray, ids: Sequence[str], image_size: int, settings: MatchSettings,
                 weights: np.ndarray | None = None):
        if len(ids) != len(features):
            raise ValueError(f"{len(ids)} catalogue ids for {len(features)} photos' keypoints")
        if weights is not None and np.shape(weights) != np.shape(features):
            raise ValueError(f"keypoint weights of shape {np.shape(weights)} for keypoints of {np.shape(features)}")
        self.settings, self.image_size = settings, image_size
        grouped = Individuals.of(ids)
        self.photos, self.individuals, self.individual_of_photo = grouped.photos, grouped.ids, grouped.of_photo
        self.keypoints = [unpack(features[row]) for row in self.photos]
        self.keypoints = [(xy, root_sift(descriptors)) for xy, descriptors in self.keypoints]
        self.weights = [unpack_weights(features[row], None if weights is None else weights[row])
                        for row in self.photos]
        counts = np.array([len(xy) for xy, _ in self.keypoints])
        if not counts.sum():
            raise ValueError("no catalogue photo has keypoints: lower the contrast threshold or check the images")
        self.photo_of_descriptor = np.repeat(np.arange(len(self.photos)), counts)
        self.descriptor_weight = np.concatenate(self.weights)
        # a query descriptor votes with this many nearest catalogue descriptors: fewer where
        # the catalogue holds fewer, for the (k+1)-th is the one each vote is measured against
        self.neighbours = min(settings.neighbours, len(self.photo_of_descriptor) - 1)
        self.index = _descriptor_search(np.concatenate([d for _, d in self.keypoints]), settings.nprobe)
        # each individual's photos, in catalogue order: one sort, not a scan per individual
        self.photos_of_individual = grouped.members()

    def __len__(self) -> int:
        return len(self.photos)

    def votes(self, distances: np.ndarray, neighbours: np.ndarray, query_weights: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """LNBNN votes (individuals,) and (photos,) of one query from its descriptors' squared
        distances to and positions of their k+1 nearest catalogue descriptors (faiss's output).
        Each vote is weighed by both keypoints' weights (`query_weights`, None: 1): a match of
        two keypoints on the animal counts, one of rocks at the same site hardly."""
        k = neighbours.shape[1] - 1
        distance = np.sqrt(np.maximum(distances, 0))
        weight = np.maximum(distance[:, k:] - distance[:, :k], 0)
        if query_weights is not None:
            weight = weight * np.asarray(query_weights, np.float64)[:, None]
        weight = weight.ravel()
        found = neighbours[:, :k].ravel()
        valid = found >= 0
        photo = self.photo_of_descriptor[np.where(valid, found, 0)]
        weight = np.where(valid, weight * self.descriptor_weight[np.where(valid, found, 0)], 0)
        descriptor = np.repeat(np.arange(len(neighbours)), k)
        photo_votes = _best_per_key(descriptor, photo, weight, len(self.photos))
        individual_votes = _best_per_key(descriptor, self.individual_of_photo[photo], weight, len(self.individuals))
        return individual_votes, photo_votes

    def block_votes(self, descriptors: Sequence[np.ndarray], weights: Sequence[np.ndarray | None]
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The `votes` of several queries (each one's RootSIFT `descriptors` and keypoint
        `weights`, None: 1), their descriptors searched in one faiss call, which keeps its
        threads busy where a call per query would not."""
        if self.neighbours < 1:
            raise ValueError("the catalogue holds fewer than two descriptors to vote with")
        counts = [len(d) for d in descriptors]
        if not sum(counts):
            return [(np.zeros(len(self.individuals)), np.zeros(len(self)))] * len(counts)
        distances, neighbours = self.index.search(np.concatenate(descriptors), self.neighbours + 1)
        bounds = np.cumsum([0, *counts])
        return [self.votes(distances[a:b], neighbours[a:b], w) for a, b, w in zip(bounds[:-1], bounds[1:], weights)]

    def shortlist(self, individual_votes: np.ndarray, photo_votes: np.ndarray) -> np.ndarray:
        """The `settings.shortlist` individuals of one query to verify, as positions in
        ``individuals``, most votes first. By ``individual`` votes (each descriptor's best vote
        among all of an individual's photos), an individual with 20 photos gathers more than one
        with a single photo of the same quality; by ``photo``, an individual has its best photo's
        votes, so each is judged by its best likeness alone."""
        if self.settings.shortlist_by == "photo":
            votes = np.zeros(len(self.individuals))
            np.maximum.at(votes, self.individual_of_photo, photo_votes)
        else:
            votes = individual_votes
        return np.argsort(-votes, kind="stable")[:self.settings.shortlist]

    def verify(self, query_xy: np.ndarray, query_descriptors: np.ndarray, individual_votes: np.ndarray,
               photo_votes: np.ndarray, query_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every pair of one query and a catalogue photo that is checked geometrically (of each
        shortlisted individual, its `photos_per_individual` photos with most votes), with the
        statistics of the pair (`VERIFIED_COLUMNS`): one array a column, one row a pair.
        ``foreground_inliers`` sums each inlier's two keypoints' weights multiplied
        (`query_weights`, None: 1), so it is the inlier count where nothing is weighed."""
        if query_weights is None:
            query_weights = np.ones(len(query_xy), np.float32)
        shortlist = self.shortlist(individual_votes, photo_votes)
        checked = []  # (shortlist position, photo)
        for position, individual in enumerate(shortlist):
            photos = self.photos_of_individual[individual]
            photos = photos[np.argsort(-photo_votes[photos], kind="stable")[:self.settings.photos_per_individual]]
            checked += [(position, photo) for photo in photos]
        matches = ratio_matches(query_descriptors, [self.keypoints[photo][1] for _, photo in checked],
                                self.settings.ratio)
        rows = []
        for (position, photo), (query_rows, photo_rows, ratios) in zip(checked, matches):
            photo_xy = self.keypoints[photo][0]
            inlier, matrix = fit_transform(query_xy[query_rows], photo_xy[photo_rows], self.settings, self.image_size)
            inlier_ratios = ratios[inlier]
            scale, rotation = scale_and_rotation(matrix)
            weighed = float(np.dot(query_weights[query_rows][inlier], self.weights[photo][photo_rows][inlier]))
            rows.append((photo, shortlist[position], position, individual_votes[shortlist[position]],
                         photo_votes[photo], len(query_rows), int(inlier.sum()), weighed,
                         *(np.quantile(inlier_ratios, [0.1, 0.5, 0.9]) if len(inlier_ratios) else [1.0] * 3),
                         hull_share(query_xy[query_rows][inlier], self.image_size),
                         hull_share(photo_xy[photo_rows][inlier], self.image_size),
                         scale, rotation, len(query_xy), len(photo_xy)))
        columns = list(zip(*rows)) if rows else [[] for _ in VERIFIED_COLUMNS]
        return {name: np.asarray(values, kind) for (name, kind), values in zip(VERIFIED_COLUMNS.items(), columns)}


def inlier_matches(query: np.ndarray, photo: np.ndarray, settings: MatchSettings, image_size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Where the inliers of one (query, catalogue photo) pair lie, found as
    `LocalCatalogue.verify` finds them (`query`, `photo`: their keypoint cache rows): the
    query's and the photo's positions (n, 2), pixels of the `image_size` square, inlier i of
    one matched to inlier i of the other. What a person looks at to believe a match."""
    (query_xy, query_descriptors), (photo_xy, photo_descriptors) = unpack(query), unpack(photo)
    (query_rows, photo_rows, _), = ratio_matches(root_sift(query_descriptors), [root_sift(photo_descriptors)],
                                                 settings.ratio)
    inlier, _ = fit_transform(query_xy[query_rows], photo_xy[photo_rows], settings, image_size)
    return query_xy[query_rows][inlier], photo_xy[photo_rows][inlier]


# What `LocalCatalogue.verify` measures of each pair it checks. photo: the catalogue photo's
# position among the catalogue's photos; individual: its individual's position in the
# catalogue's individuals; shortlist_rank: where voting put the individual.
VERIFIED_COLUMNS = {
    "photo": np.int64, "individual": np.int64, "shortlist_rank": np.int64,
    "individual_votes": np.float64, "photo_votes": np.float64,
    # ratio-test matches, and those RANSAC kept
    "matches": np.int64, "inliers": np.int64,
    # the inliers, each weighed by how likely both its keypoints lie on the animal
    "foreground_inliers": np.float64,
    # the inliers' nearest-to-second-nearest distance ratios (10%, 50%, 90% quantiles; 1 if none)
    "ratio_q10": np.float64, "ratio_q50": np.float64, "ratio_q90": np.float64,
    # the share of each photo's square the inliers' convex hull covers
    "query_cover": np.float64, "photo_cover": np.float64,
    # the fitted transform (NaN where none was found)
    "scale": np.float64, "rotation": np.float64,
    "query_keypoints": np.int64, "photo_keypoints": np.int64,
}


def with_query_context(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` (one row a verified pair, with a ``query`` column) with what each pair is worth
    beside the query's other pairs: ``inlier_share`` (inliers over matches),
    ``foreground_share`` (foreground inliers over inliers), ``individual_vote_share`` and
    ``photo_vote_share`` (its votes over the query's most), ``inlier_gap`` (its foreground
    inliers less the most of any other individual's photo for that query: a clear winner has a
    large one) and ``log_scale`` (|log| of the transform's scale)."""
    pairs = pairs.copy()
    pairs["inlier_share"] = pairs["inliers"] / pairs["matches"].clip(lower=1)
    pairs["foreground_share"] = pairs["foreground_inliers"] / pairs["inliers"].clip(lower=1)
    by_query = pairs.groupby("query", sort=False)
    for kind in ("individual", "photo"):
        most = by_query[f"{kind}_votes"].transform("max").to_numpy()
        pairs[f"{kind}_vote_share"] = np.divide(pairs[f"{kind}_votes"], most, out=np.zeros(len(pairs)),
                                                where=most > 0)
    inliers = "foreground_inliers"
    best_of_individual = pairs.groupby(["query", "individual"], sort=False)[inliers].transform("max")
    # the best and second-best individual of each query by (foreground) inliers
    per_individual = pairs.groupby(["query", "individual"], sort=False)[inliers].max().reset_index()
    ranked = per_individual.sort_values(["query", inliers], ascending=[True, False])
    first = ranked.groupby("query").nth(0).set_index("query")[inliers]
    second = ranked.groupby("query").nth(1).set_index("query")[inliers]
    first_of_query = pairs["query"].map(first).to_numpy()
    second_of_query = pairs["query"].map(second).fillna(0).to_numpy()
    best_other = np.where(best_of_individual.to_numpy() == first_of_query, second_of_query, first_of_query)
    pairs["inlier_gap"] = pairs[inliers] - best_other
    scale = pairs["scale"].to_numpy(np.float64)
    # a degenerate fit (scale 0) is as good as none: missing, as the trees take it
    pairs["log_scale"] = np.abs(np.log(np.where(scale > 0, scale, np.nan)))
    return pairs


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


def _verify_block(catalogue: LocalCatalogue, queries: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  votes: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    return [catalogue.verify(xy, descriptors, *vote, weights)
            for (xy, descriptors, weights), vote in zip(queries, votes)]


def match_queries(catalogue: LocalCatalogue, query_features: np.ndarray, query_weights: np.ndarray | None = None, *,
                  n_jobs: int = 1, progress=None) -> pd.DataFrame:
    """Every pair of a query photo (a row of `query_features`, its keypoints' weights a row of
    `query_weights`, None: all 1) and a catalogue photo that is verified, with its statistics:
    one row a pair, columns ``query`` (the row), ``id`` and `VERIFIED_COLUMNS`, ordered by
    query, then shortlist rank, then the photo's votes. Queries without keypoints have none.
    Verification runs on `n_jobs` threads (OpenCV releases the GIL); `progress(done, total)`."""
    if catalogue.neighbours < 1:
        raise ValueError("the catalogue holds fewer than two descriptors to vote with")
    found, n = [], len(query_features)
    if progress:
        progress(0, n)
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        for start in range(0, n, QUERY_BLOCK):
            rows = query_features[start:start + QUERY_BLOCK]
            weights = [None] * len(rows) if query_weights is None else query_weights[start:start + QUERY_BLOCK]
            queries = [(xy, root_sift(descriptors), unpack_weights(row, row_weights))
                       for row, row_weights in zip(rows, weights) for xy, descriptors in [unpack(row)]]
            counts = [len(xy) for xy, _, _ in queries]
            votes = catalogue.block_votes([d for _, d, _ in queries], [w for _, _, w in queries])
            with_keypoints = [i for i, c in enumerate(counts) if c]
            parts = np.array_split(np.array(with_keypoints, int), max(1, min(n_jobs, len(with_keypoints))))
            results = parallel(delayed(_verify_block)(catalogue, [queries[i] for i in part], [votes[i] for i in part])
                               for part in parts if len(part))
            for part, result in zip([p for p in parts if len(p)], results):
                for i, pairs in zip(part.tolist(), result):
                    found.append(pd.DataFrame({"query": start + i, **pairs}))
            if progress:
                progress(min(n, start + QUERY_BLOCK), n)
    if not found:
        pairs = pd.DataFrame({"query": pd.Series(dtype=np.int64),
                              **{name: pd.Series(dtype=kind) for name, kind in VERIFIED_COLUMNS.items()}})
    else:
        pairs = pd.concat(found, ignore_index=True)
    pairs.insert(1, "id", catalogue.individuals[pairs["individual"].to_numpy()] if len(pairs) else [])
    return with_query_context(pairs)


# How an individual's photos' probabilities make its own: its best photo's, or the chance that
# at least one of them is of it if each said so independently (noisy-or), which lets two good
# photos count for more than one.
POOLINGS = ("max", "noisy_or")


def individual_scores(pairs: pd.DataFrame, scoring: str, pooling: str = "max") -> pd.DataFrame:
    """Each query's shortlisted individuals from its verified `pairs` (`match_queries`, with a
    ``probability`` column where `scoring` is ``verifier``): a long table (query, rank from 0,
    id, votes, inliers, score), ranked by score, then inliers, then votes.

    ``score`` is the individual's best photo's foreground inliers (`scoring` ``inliers``: the
    inlier count where keypoints are not weighed) or its photos' probabilities pooled by
    `pooling` (``verifier``); ``inliers`` is its best photo's count in either case and
    ``votes`` its votes."""
    columns = {"query": int, "rank": int, "id": str, "votes": float, "inliers": int, "score": float}
    if not len(pairs):
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    if scoring == "inliers":
        score = pairs["foreground_inliers"].astype(float)
    elif pooling == "max":
        score = pairs["probability"]
    elif pooling == "noisy_or":
        # 1 - prod(1 - p), as the sum of logs: a product of many small numbers underflows
        score = np.log1p(-pairs["probability"].clip(upper=1 - 1e-12))
    else:
        raise ValueError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
    grouped = pairs.assign(score=score).groupby(["query", "id"], sort=False)
    table = grouped.agg(votes=("individual_votes", "first"), inliers=("inliers", "max"),
                        score=("score", "sum" if scoring == "verifier" and pooling == "noisy_or" else "max"))
    if scoring == "verifier" and pooling == "noisy_or":
        table["score"] = -np.expm1(table["score"])
    table = table.reset_index().sort_values(["query", "score", "inliers", "votes"],
                                            ascending=[True, False, False, False], kind="stable")
    table["rank"] = table.groupby("query").cumcount()
    return table[list(columns)].reset_index(drop=True)


def shortlist_candidates(shortlists: pd.DataFrame, n_queries: int, fallback: Sequence[str], column: str = "score"
                         ) -> Candidates:
    """The `identification.Candidates` of `n_queries` queries from their shortlists
    (`individual_scores`): the four best individuals by rank, with their `column`. A query with
    fewer than four shortlisted (no keypoints, or a tiny catalogue) is filled from `fallback`
    (the catalogue's commonest individuals) with score -1, below any threshold tried."""
    ids = [[] for _ in range(n_queries)]
    top = np.full((n_queries, N_CANDIDATES), -1.0)
    for query, group in shortlists.sort_values(["query", "rank"]).groupby("query", sort=False):
        chosen = group.head(N_CANDIDATES)
        ids[int(query)] = chosen["id"].tolist()
        top[int(query), :len(chosen)] = chosen[column].to_numpy(float)
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


def read_weights(weights_npy: str | Path, keypoints: np.ndarray) -> np.ndarray:
    """A split's keypoint weights (`foreground`), (photos, slots) float32, checked against its
    keypoint cache."""
    weights = np.load(weights_npy, mmap_mode="r")
    if weights.shape != keypoints.shape:
        raise ValueError(f"{weights_npy}: keypoint weights of shape {weights.shape} for keypoints of "
                         f"{keypoints.shape}: made from another keypoint cache; rerun local_foreground")
    return weights


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


def identify(train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, settings: MatchSettings, image_size: int,
             scoring: str, verifier=None, phash_distances: Sequence[int], thresholds: Sequence[float], n_jobs: int,
             weights: tuple[str | Path, str | Path] | None = None, reviewed: str | Path | None = None,
             encounters: str | Path | None = None, progress=None) -> LocalIdentification:
    """The method's answers from the keypoints of train and test (each .npy with its index
    .csv): each search's queries matched against its catalogue (`match_queries`), each
    shortlisted individual scored (`individual_scores`) by its inliers (`scoring` ``inliers``)
    or by its photos' probabilities from `verifier` (a `verifier.Verifier`), pooled as chosen on
    validation and calibrated to P(it is the query's individual) (``probability``); then
    answered as every method is, the new_whale threshold (of `thresholds`: inliers, or that
    probability) chosen on validation. `weights`: the train and test keypoints' weights
    (`foreground`, .npy files), or None: all 1. `reviewed`: the test photos a person
    identified, which join the test catalogue, and `encounters` (`Queries.read`). `progress(label, done, total)`
    is told how far each split's matching is.

    Verification runs on `n_jobs` threads, and so do faiss's k-means and search, whatever cores
    the machine has: faiss sums in another order on another number of threads, and its inverted
    lists, and so the shortlists, would differ from machine to machine."""
    import faiss  # only the matching jobs need it

    check_choice("scoring", scoring, LOCAL_SCORINGS)
    if (scoring == "verifier") != (verifier is not None):
        raise ValueError(f"scoring {scoring!r} with{'out' if verifier is None else ''} a verifier")
    faiss.omp_set_num_threads(n_jobs)
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed, encounters)
    train_keypoints, _ = read_keypoints(train_npy, train_index)
    test_keypoints, _ = read_keypoints(test_npy, test_index)
    queries.check_rows(len(train_keypoints), len(test_keypoints), train_npy, test_npy)
    train_weights, test_weights = (None, None) if weights is None else (
        read_weights(weights[0], train_keypoints), read_weights(weights[1], test_keypoints))
    searches = queries.searches()
    pairs, fallback = {}, {}
    for search in searches:
        ids = np.asarray(search.catalogue_ids)
        catalogue = LocalCatalogue(search.catalogue_values(train_keypoints, test_keypoints), ids, image_size,
                                   settings,
                                   None if weights is None else search.catalogue_values(train_weights, test_weights))
        log.info("%s: catalogue of %d photos of %d individuals, %d descriptors", search.split, len(catalogue),
                 len(catalogue.individuals), len(catalogue.photo_of_descriptor))
        found = match_queries(catalogue, search.query_values(train_keypoints, test_keypoints),
                              None if weights is None else search.query_values(train_weights, test_weights),
                              n_jobs=n_jobs, progress=partial(progress, search.split) if progress else None)
        if verifier is not None:
            found["probability"] = verifier.probability(found)
        images = search.queries["image"].to_numpy()
        catalogue_images = search.catalogue["image"].to_numpy()[catalogue.photos]
        found.insert(0, "image", images[found["query"].to_numpy()] if len(found) else [])
        found["photo"] = catalogue_images[found["photo"].to_numpy()] if len(found) else []
        pairs[search.split] = found
        fallback[search.split] = most_frequent_ids(ids, len(catalogue.individuals))

    def candidates(search: Search, pooling: str) -> tuple[pd.DataFrame, Candidates]:
        shortlists = individual_scores(pairs[search.split], scoring, pooling)
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
    pairs = {split: table.drop(columns=["query", "individual"]) for split, table in pairs.items()}
    return LocalIdentification(answers.validation, answers.test, answers.curve, answers.chosen, pairs, shortlists,
                               poolings)
