"""The local method's catalogue: one descriptor index over every catalogue photo, voting for a
shortlist, and the geometric check of the shortlisted photos.

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
2. **Geometric verification** (`geometry`). Each shortlisted individual's
   `photos_per_individual` photos with most votes are checked against the query, and each
   pair's statistics recorded (`pairs`).

Where each keypoint has a weight (`foreground`: how likely it lies on the animal, not on rocks
that recur in other individuals' photos taken at the same place), a vote counts by both its
keypoints' weights multiplied, and so does an inlier (``foreground_inliers``, which the
``inliers`` scoring and the verifier read). Without weights every keypoint weighs 1, and
``foreground_inliers`` is the inlier count. `match_queries` runs both steps over many queries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from whaleid.identification.candidates import Individuals
from whaleid.methods.local.geometry import (
    fit_transform,
    guided_matches,
    hull_share,
    ratio_matches,
    root_sift,
    scale_and_rotation,
)
from whaleid.methods.local.keypoints import DESCRIPTOR_SIZE, unpack, unpack_weights
from whaleid.methods.local.pairs import VERIFIED_COLUMNS, with_query_context
from whaleid.settings import MatchSettings

log = logging.getLogger(__name__)
# Below this many catalogue descriptors an exact search is as fast as inverted lists (whose
# k-means needs some 39 points a list to train on) and needs no training.
EXACT_SEARCH_BELOW = 50_000
# Inverted lists: LISTS_PER_ROOT * sqrt(descriptors) of them, their centres trained by k-means
# on TRAIN_PER_LIST descriptors a list (faiss warns below 39).
LISTS_PER_ROOT, TRAIN_PER_LIST = 2, 64
# Catalogue photos whose descriptors are made and added to the index at a time: the index holds
# them all, the float32 RootSIFT copies of a batch at a time only.
ADD_BATCH = 128


class _Descriptors:
    """The RootSIFT descriptors of a catalogue's photos, made from their keypoint records when
    asked (uint8, a quarter of float32's bytes), never all held at once."""

    def __init__(self, features: np.ndarray, counts: np.ndarray):
        self.features, self.counts = features, counts
        self.starts = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def of_photos(self, photos: slice) -> np.ndarray:
        rows = [unpack(row)[1] for row in self.features[photos]]
        return root_sift(np.concatenate(rows)) if rows else np.zeros((0, DESCRIPTOR_SIZE), np.float32)

    def batches(self):
        """(first descriptor's position, descriptors) of `ADD_BATCH` photos at a time."""
        for start in range(0, len(self.counts), ADD_BATCH):
            yield int(self.starts[start]), self.of_photos(slice(start, start + ADD_BATCH))

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The descriptors at `positions` (in the order of all photos' descriptors), in the
        order given."""
        taken = np.zeros((len(positions), DESCRIPTOR_SIZE), np.float32)
        for first, descriptors in self.batches():
            inside = np.flatnonzero((positions >= first) & (positions < first + len(descriptors)))
            taken[inside] = descriptors[positions[inside] - first]
        return taken


def _descriptor_search(descriptors: _Descriptors, nprobe: int, compress_above: int | None):
    """A faiss index over the catalogue's `descriptors` (n, 128): exact below
    `EXACT_SEARCH_BELOW`; above, inverted lists (about 2*sqrt(n) of them, `nprobe` searched),
    which hold each descriptor whole (IVF-Flat, 512 bytes) or, above `compress_above`
    descriptors, in 8 bits a component (IVF-SQ8, 128 bytes; its distances approximate, which
    only the votes read: the shortlisted photos are still matched on the exact descriptors)."""
    import faiss  # only the matching jobs need it

    n = len(descriptors)
    if n < EXACT_SEARCH_BELOW:
        index = faiss.IndexFlatL2(DESCRIPTOR_SIZE)
    else:
        n_lists = int(min(LISTS_PER_ROOT * math.sqrt(n), n // 39))
        if compress_above is not None and n > compress_above:
            index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(DESCRIPTOR_SIZE), DESCRIPTOR_SIZE, n_lists,
                                                  faiss.ScalarQuantizer.QT_8bit)
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(DESCRIPTOR_SIZE), DESCRIPTOR_SIZE, n_lists)
        # k-means on a sample: enough for the lists' centres, and the build's longest step otherwise.
        # The sample's descriptors are made apart from the index's: cheaper than holding them all.
        rng = np.random.default_rng(0)
        index.train(descriptors.take(rng.choice(n, min(n, TRAIN_PER_LIST * n_lists), replace=False)))
        index.nprobe = min(nprobe, n_lists)
    for _, batch in descriptors.batches():
        index.add(batch)
    return index


class LocalCatalogue:
    """The catalogue's photos of known individuals, their keypoints and one descriptor index.

    `features`: (N, slots) keypoint records of the catalogue photos (`local_features`); `ids`:
    each photo's individual (new_whale photos are left out: they are of no one individual);
    `weights`: (N, slots) each keypoint's weight (`foreground`: how likely it lies on the
    animal), or None: all 1. Each photo's descriptors are made from its records when it is
    checked (`photo_keypoints`), so that the index is the only copy of them all.
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
        self.features = features[self.photos]
        self.weights = [unpack_weights(features[row], None if weights is None else weights[row])
                        for row in self.photos]
        counts = np.array([len(w) for w in self.weights], np.int64)
        if not counts.sum():
            raise ValueError("no catalogue photo has keypoints: lower the contrast threshold or check the images")
        self.photo_of_descriptor = np.repeat(np.arange(len(self.photos), dtype=np.int32), counts)
        self.descriptor_weight = np.concatenate(self.weights)
        # a query descriptor votes with this many nearest catalogue descriptors: fewer where
        # the catalogue holds fewer, for the (k+1)-th is the one each vote is measured against
        self.neighbours = min(settings.neighbours, len(self.photo_of_descriptor) - 1)
        self.index = _descriptor_search(_Descriptors(self.features, counts), settings.nprobe,
                                        settings.compress_above)
        # each individual's photos, in catalogue order: one sort, not a scan per individual
        self.photos_of_individual = grouped.members()

    def photo_keypoints(self, photo: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue photo `photo`'s keypoint positions (n, 2) and RootSIFT descriptors (n, 128)."""
        xy, descriptors = unpack(self.features[photo])
        return xy, root_sift(descriptors)

    def __len__(self) -> int:
        return len(self.photos)

    def votes(self, distances: np.ndarray, neighbours: np.ndarray, query_weights: np.ndarray | None = None,
              own: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """LNBNN votes (individuals,) and (photos,) of one query from its descriptors' squared
        distances to and positions of their k+1 nearest catalogue descriptors (faiss's output).
        Each vote is weighed by both keypoints' weights (`query_weights`, None: 1): a match of
        two keypoints on the animal counts, one of rocks at the same site hardly. `own`: the
        query's own photo where the catalogue holds it (its position, -1: none), which gets no
        vote."""
        k = neighbours.shape[1] - 1
        distance = np.sqrt(np.maximum(distances, 0))
        weight = np.maximum(distance[:, k:] - distance[:, :k], 0)
        if query_weights is not None:
            weight = weight * np.asarray(query_weights, np.float64)[:, None]
        weight = weight.ravel()
        found = neighbours[:, :k].ravel()
        valid = found >= 0
        photo = self.photo_of_descriptor[np.where(valid, found, 0)]
        weight = np.where(valid & (photo != own), weight * self.descriptor_weight[np.where(valid, found, 0)], 0)
        descriptor = np.repeat(np.arange(len(neighbours)), k)
        photo_votes = _best_per_key(descriptor, photo, weight, len(self.photos))
        individual_votes = _best_per_key(descriptor, self.individual_of_photo[photo], weight, len(self.individuals))
        return individual_votes, photo_votes

    def block_votes(self, descriptors: Sequence[np.ndarray], weights: Sequence[np.ndarray | None],
                    own: Sequence[int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """The `votes` of several queries (each one's RootSIFT `descriptors` and keypoint
        `weights`, None: 1; `own`: each one's own photo in the catalogue, -1 or None: none),
        their descriptors searched in one faiss call, which keeps its threads busy where a call
        per query would not."""
        if self.neighbours < 1:
            raise ValueError("the catalogue holds fewer than two descriptors to vote with")
        counts = [len(d) for d in descriptors]
        if not sum(counts):
            return [(np.zeros(len(self.individuals)), np.zeros(len(self)))] * len(counts)
        distances, neighbours = self.index.search(np.concatenate(descriptors), self.neighbours + 1)
        bounds = np.cumsum([0, *counts])
        own = [-1] * len(counts) if own is None else own
        return [self.votes(distances[a:b], neighbours[a:b], w, o)
                for a, b, w, o in zip(bounds[:-1], bounds[1:], weights, own)]

    def shortlist(self, individual_votes: np.ndarray, photo_votes: np.ndarray, own: int = -1) -> np.ndarray:
        """The `settings.shortlist` individuals of one query to verify, as positions in
        ``individuals``, most votes first. By ``individual`` votes (each descriptor's best vote
        among all of an individual's photos), an individual with 20 photos gathers more than one
        with a single photo of the same quality; by ``photo``, an individual has its best photo's
        votes, so each is judged by its best likeness alone. An individual whose only photo is
        the query's `own` (its position, -1: none) is not shortlisted."""
        if self.settings.shortlist_by == "photo":
            votes = np.zeros(len(self.individuals))
            np.maximum.at(votes, self.individual_of_photo, photo_votes)
        else:
            votes = individual_votes.copy()
        if own >= 0 and len(self.photos_of_individual[self.individual_of_photo[own]]) == 1:
            votes[self.individual_of_photo[own]] = -np.inf
        shortlist = np.argsort(-votes, kind="stable")[:self.settings.shortlist]
        return shortlist[np.isfinite(votes[shortlist])]

    def verify(self, query_xy: np.ndarray, query_descriptors: np.ndarray, individual_votes: np.ndarray,
               photo_votes: np.ndarray, query_weights: np.ndarray | None = None, own: int = -1,
               checked_before: Mapping[int, Sequence] | None = None) -> dict[str, np.ndarray]:
        """Every pair of one query and a catalogue photo that is checked geometrically (of each
        shortlisted individual, its `photos_per_individual` photos with most votes), with the
        statistics of the pair (`VERIFIED_COLUMNS`): one array a column, one row a pair.
        ``foreground_inliers`` sums each inlier's two keypoints' weights multiplied
        (`query_weights`, None: 1), so it is the inlier count where nothing is weighed. The
        query's `own` photo (its position in the catalogue, -1: none) is never checked.
        `checked_before`: this query's pairs checked before, by catalogue photo (its position):
        their `pairs.PAIR_COLUMNS` values, taken as they are instead of checked again (self-training
        matches queries again against a catalogue grown by a few photos, and half its pairs are
        the same). They must have been found with the same keypoints, weights and settings."""
        if query_weights is None:
            query_weights = np.ones(len(query_xy), np.float32)
        shortlist = self.shortlist(individual_votes, photo_votes, own)
        checked = []  # (shortlist position, photo)
        for position, individual in enumerate(shortlist):
            photos = self.photos_of_individual[individual]
            photos = photos[photos != own]
            photos = photos[np.argsort(-photo_votes[photos], kind="stable")[:self.settings.photos_per_individual]]
            checked += [(position, photo) for photo in photos]
        measured = dict(checked_before or {})
        unmeasured = [photo for _, photo in checked if photo not in measured]
        keypoints = [self.photo_keypoints(photo) for photo in unmeasured]
        matches = ratio_matches(query_descriptors, [descriptors for _, descriptors in keypoints], self.settings.ratio)
        tolerance = self.settings.reprojection_error * self.image_size
        for photo, (photo_xy, photo_descriptors), (query_rows, photo_rows, ratios) in zip(
                unmeasured, keypoints, matches):
            inlier, matrix = fit_transform(query_xy[query_rows], photo_xy[photo_rows], self.settings, self.image_size)
            inlier_ratios = ratios[inlier]
            scale, rotation = scale_and_rotation(matrix)
            weighed = float(np.dot(query_weights[query_rows][inlier], self.weights[photo][photo_rows][inlier]))
            guided_query, guided_photo = guided_matches(query_xy, query_descriptors, photo_xy, photo_descriptors,
                                                        matrix, tolerance, self.settings.guided_ratio)
            guided_weighed = float(np.dot(query_weights[guided_query], self.weights[photo][guided_photo]))
            measured[photo] = (len(query_rows), int(inlier.sum()), weighed,
                               *(np.quantile(inlier_ratios, [0.1, 0.5, 0.9]) if len(inlier_ratios) else [1.0] * 3),
                               hull_share(query_xy[query_rows][inlier], self.image_size),
                               hull_share(photo_xy[photo_rows][inlier], self.image_size),
                               len(guided_query), guided_weighed, scale, rotation, len(query_xy), len(photo_xy))
        rows = [(photo, shortlist[position], position, individual_votes[shortlist[position]], photo_votes[photo],
                 *measured[photo]) for position, photo in checked]
        columns = list(zip(*rows)) if rows else [[] for _ in VERIFIED_COLUMNS]
        return {name: np.asarray(values, kind) for (name, kind), values in zip(VERIFIED_COLUMNS.items(), columns)}


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
                  votes: list[tuple[np.ndarray, np.ndarray]], own: list[int], before: list[Mapping | None]
                  ) -> list[dict[str, np.ndarray]]:
    return [catalogue.verify(xy, descriptors, *vote, weights, photo, checked)
            for (xy, descriptors, weights), vote, photo, checked in zip(queries, votes, own, before)]


def query_keypoints(rows: np.ndarray, weights: np.ndarray | None = None
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each query's keypoint positions, RootSIFT descriptors and weights, from its cache row and
    its row of `weights` (None: every keypoint weighs 1), as `match_queries` asks with them."""
    weights = [None] * len(rows) if weights is None else weights
    return [(xy, root_sift(descriptors), unpack_weights(row, row_weights))
            for row, row_weights in zip(rows, weights) for xy, descriptors in [unpack(row)]]


def match_queries(catalogue: LocalCatalogue, query_features: np.ndarray, query_weights: np.ndarray | None = None, *,
                  own_photos: np.ndarray | None = None, checked_before: Sequence[Mapping | None] | None = None,
                  n_jobs: int = 1, progress=None) -> pd.DataFrame:
    """Every pair of a query photo (a row of `query_features`, its keypoints' weights a row of
    `query_weights`, None: all 1) and a catalogue photo that is verified, with its statistics:
    one row a pair, columns ``query`` (the row), ``id`` and `VERIFIED_COLUMNS`, ordered by
    query, then shortlist rank, then the photo's votes. Queries without keypoints have none.
    `own_photos`: where the catalogue holds the queries themselves, each query's own photo (its
    position in the catalogue, -1: none), which it neither votes for nor is checked against.
    `checked_before`: each query's pairs checked before (`LocalCatalogue.verify`), or None.
    Verification runs on `n_jobs` threads (OpenCV releases the GIL); `progress(done, total)`."""
    if catalogue.neighbours < 1:
        raise ValueError("the catalogue holds fewer than two descriptors to vote with")
    found, n = [], len(query_features)
    own_photos = np.full(n, -1, np.int64) if own_photos is None else np.asarray(own_photos, np.int64)
    if len(own_photos) != n:
        raise ValueError(f"{len(own_photos)} own photos for {n} queries")
    checked_before = [None] * n if checked_before is None else list(checked_before)
    if len(checked_before) != n:
        raise ValueError(f"pairs checked before of {len(checked_before)} queries for {n} queries")
    if progress:
        progress(0, n)
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        block = catalogue.settings.query_block
        for start in range(0, n, block):
            queries = query_keypoints(query_features[start:start + block],
                                      None if query_weights is None else query_weights[start:start + block])
            counts = [len(xy) for xy, _, _ in queries]
            own = own_photos[start:start + block].tolist()
            before = checked_before[start:start + block]
            votes = catalogue.block_votes([d for _, d, _ in queries], [w for _, _, w in queries], own)
            with_keypoints = [i for i, c in enumerate(counts) if c]
            parts = np.array_split(np.array(with_keypoints, int), max(1, min(n_jobs, len(with_keypoints))))
            results = parallel(delayed(_verify_block)(catalogue, [queries[i] for i in part], [votes[i] for i in part],
                                                      [own[i] for i in part], [before[i] for i in part])
                               for part in parts if len(part))
            for part, result in zip([p for p in parts if len(p)], results):
                for i, pairs in zip(part.tolist(), result):
                    found.append(pd.DataFrame({"query": start + i, **pairs}))
            if progress:
                progress(min(n, start + block), n)
    if not found:
        pairs = pd.DataFrame({"query": pd.Series(dtype=np.int64),
                              **{name: pd.Series(dtype=kind) for name, kind in VERIFIED_COLUMNS.items()}})
    else:
        pairs = pd.concat(found, ignore_index=True)
    pairs.insert(1, "id", catalogue.individuals[pairs["individual"].to_numpy()])
    return with_query_context(pairs)
