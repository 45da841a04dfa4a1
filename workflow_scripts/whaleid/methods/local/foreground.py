"""The local method's foreground: how likely each keypoint lies on the animal, learned from the labelled photos.

In a loose crop of an animal in a scene, most keypoints lie on rocks, ground and vegetation.
Where many individuals are photographed at the same few places, those keypoints verify
between photos of *different* individuals and outnumber the ones on the animal's pattern:
voting shortlists the individuals photographed at the query's site, and verification counts
the rocks. HotSpotter weighs each keypoint by a pretrained network's foreground probability;
whaleid has no pretrained network, so it learns the same thing from the catalogue's labels.

**Labels** (`keypoint_labels`, fit photos only). The fit photos are dealt into `folds`; each
fold's photos are matched against the others' as identification matches them (votes, ratio
test, RANSAC), against two kinds of photo: their own individual's (`positives`, most votes
first) and the other individuals' photos with most votes (`negatives`, the hard ones: where
the background votes, those are the photos of the same site). A keypoint that is an inlier of
a pair of *different* individuals lies on something that is not the individual: background,
0. Then each pair of the *same* individual is fitted again without the matches of keypoints
known to be background, for two photos of one animal at one place share the place as well,
and a RANSAC fit finds the larger of the two: the keypoints that are inliers there lie on the
individual, 1. Keypoints never an inlier are not labelled.

**Model** (`ForegroundModel`). Gradient-boosted trees read a keypoint's RootSIFT descriptor (what
its texture looks like: stripes, callosities, notches against gravel and grass) and its place
in the frame (relative to the centre: the animal is what the photographer centred), and give
P(on the animal) for every keypoint of every photo, labelled or not, learned from as many
keypoints of each class. Its weights (`foreground_weights`) then multiply each descriptor's votes and each
inlier's count (`catalogue`), and so reach the verifier's features. Validation and test photos
are never learned from: they are only weighed.

**Sparse catalogues.** Labels on the animal come from pairs of one individual: a catalogue of
mostly one photo per individual may give too few (`MIN_LABELS`). Then nothing is learned, the
log says so, and every keypoint weighs 1 (`ForegroundModel.unlearned`), as with
`local.foreground: none`: the method goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.io.files import atomic_output
from whaleid.io.tables import train_table
from whaleid.methods.local.catalogue import LocalCatalogue
from whaleid.methods.local.chunks import FitFolds
from whaleid.methods.local.geometry import fit_transform, ratio_matches, root_sift
from whaleid.methods.local.keypoints import read_keypoint_cache, read_keypoints, unpack
from whaleid.settings import ForegroundSettings, MatchSettings
from whaleid.vocabulary import NEW_WHALE

log = logging.getLogger(__name__)
# What the trees read of a keypoint: its RootSIFT descriptor, then where it lies.
POSITION_FEATURES = ["x", "y", "radius"]
# Labelled keypoints of each class (on an individual, on a background) the model needs; a
# catalogue that gives fewer (mostly one photo per individual) is weighed 1 throughout.
MIN_LABELS = 2


def keypoint_features(xy: np.ndarray, descriptors: np.ndarray, side: int) -> np.ndarray:
    """The model's input of keypoints at positions `xy` (n, 2), pixels of the `side` square,
    with SIFT `descriptors` (n, 128): RootSIFT, then x and y from the centre (-1 .. 1) and the
    distance from it, (n, 131) float32."""
    centred = (np.asarray(xy, np.float32) - side / 2) / (side / 2)
    radius = np.hypot(centred[:, 0], centred[:, 1])[:, None]
    return np.hstack([root_sift(descriptors), centred, radius]).astype(np.float32)


@dataclass(frozen=True)
class KeypointLabels:
    """For each keypoint slot of the photos given (photos, slots): in how many verified pairs
    of the same individual (``same``) and of different individuals (``different``) it was an
    inlier; and the photo pairs checked (``pairs``: image, photo, same, inliers; of a pair of one
    individual, the inliers of its fit without the matches of background keypoints)."""

    same: np.ndarray
    different: np.ndarray
    pairs: pd.DataFrame

    def labels(self) -> np.ndarray:
        """1 (on the individual), 0 (background) or -1 (not labelled) per slot."""
        label = np.full(self.same.shape, -1, np.int8)
        label[self.same > 0] = 1
        label[self.different > 0] = 0  # once matched to another individual, it is not the animal
        return label


def keypoint_labels(keypoints: np.ndarray, ids: Sequence[str], images: Sequence[str], *, image_size: int,
                    settings: MatchSettings, foreground: ForegroundSettings, n_jobs: int = 1) -> KeypointLabels:
    """Which keypoints of the photos (`keypoints`: their cache rows; `ids`, `images`) verify
    between photos of one individual and which between photos of two: `fold_matches`, then
    `labels_from_matches`, in one chunk."""
    pairs, matches = fold_matches(keypoints, ids, image_size=image_size, settings=settings, foreground=foreground,
                                  n_jobs=n_jobs)
    return labels_from_matches(keypoints, images, [pairs], [matches], image_size=image_size, settings=settings)


def fold_matches(keypoints: np.ndarray, ids: Sequence[str], *, image_size: int, settings: MatchSettings,
                 foreground: ForegroundSettings, n_jobs: int = 1, chunk: tuple[int, int] = (1, 1)
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The photo pairs the foreground is labelled from, and their keypoints' matches: each photo
    (`keypoints`: their cache rows; `ids`), in its fold, matched against its own individual's
    `foreground.positives` photos and the other individuals' `foreground.negatives` photos with
    most votes among the other folds' photos. At most `foreground.max_queries` photos are asked
    (drawn at random); the others are still labelled where they are one of an asked photo's
    pair. `chunk` (k, n): only the asked photos of chunk k of n
    (`chunks.FitFolds.chunk`); the tables of the n chunks, concatenated in order, are those of one.

    Returns the pairs (``query`` and ``photo``: rows of `keypoints`; ``same``: of one
    individual; ``matches``: how many of the matches table's rows, which follow the pairs'
    order, are the pair's) and the matches (``query_slot``, ``photo_slot``: the keypoints'
    slots): of a pair of two individuals its inliers, of a pair of one every ratio-test match,
    to be fitted once the background is known (`labels_from_matches`)."""
    from joblib import Parallel, delayed

    ids = np.asarray(ids, dtype=str)
    if len(ids) != len(keypoints):
        raise ValueError(f"{len(keypoints)} keypoint rows for {len(ids)} ids")
    # slot of each used keypoint: unpack keeps the used slots, in order
    slots = [np.flatnonzero(~np.isnan(row["xy"][:, 0])) for row in keypoints]
    fit_folds = FitFolds.draw(len(ids), foreground.folds, foreground.max_queries, foreground.seed)
    pairs, query_slots, photo_slots = [], [], []
    for fold, asked in fit_folds.chunk(*chunk, settings.query_block):
        catalogue_rows = fit_folds.catalogue_rows(fold)
        catalogue = LocalCatalogue(keypoints[catalogue_rows], ids[catalogue_rows], image_size, settings)
        rows_of_photo = catalogue_rows[catalogue.photos]
        found = []
        with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
            for start in range(0, len(asked), settings.query_block):
                block = asked[start:start + settings.query_block]
                queries = [(xy, root_sift(descriptors)) for xy, descriptors in map(unpack, keypoints[block])]
                votes = catalogue.block_votes([d for _, d in queries], [None] * len(queries))
                found += parallel(delayed(_match_photo)(catalogue, *query, photo_votes, ids[row], foreground)
                                  for row, query, (_, photo_votes) in zip(block, queries, votes))
        for query, matched in zip(asked, found):
            for photo, query_rows, photo_rows, is_same in matched:
                row = rows_of_photo[photo]
                pairs.append((query, row, is_same, len(query_rows)))
                query_slots.append(slots[query][query_rows])
                photo_slots.append(slots[row][photo_rows])
    pairs = pd.DataFrame(pairs, columns=["query", "photo", "same", "matches"]).astype(
        {"query": np.int64, "photo": np.int64, "same": bool, "matches": np.int64})
    matches = pd.DataFrame({"query_slot": np.concatenate([np.zeros(0, np.int64), *query_slots]).astype(np.int64),
                            "photo_slot": np.concatenate([np.zeros(0, np.int64), *photo_slots]).astype(np.int64)})
    return pairs, matches


def labels_from_matches(keypoints: np.ndarray, images: Sequence[str], pairs: Sequence[pd.DataFrame],
                        matches: Sequence[pd.DataFrame], *, image_size: int, settings: MatchSettings
                        ) -> KeypointLabels:
    """The keypoints' labels from the pairs and matches `fold_matches` found (the tables of
    every chunk, in order; `keypoints` and `images` the photos it was given): a keypoint that is
    an inlier of a pair of two individuals is on a background; then each pair of one
    individual is fitted again without the matches of keypoints known to be background, and
    its inliers are on the individual."""
    images = np.asarray(images, dtype=str)
    if len(images) != len(keypoints):
        raise ValueError(f"{len(keypoints)} keypoint rows for {len(images)} images")
    same = np.zeros(keypoints.shape, np.int32)
    different = np.zeros(keypoints.shape, np.int32)
    checked, positives = [], []  # positives: (query, photo row, query slots, photo slots) of their matches
    for chunk_pairs, chunk_matches in zip(pairs, matches, strict=True):
        ends = np.cumsum(chunk_pairs["matches"].to_numpy())
        if (ends[-1] if len(ends) else 0) != len(chunk_matches):
            raise ValueError(f"{len(chunk_pairs)} pairs of {ends[-1] if len(ends) else 0} matches, but a table of "
                             f"{len(chunk_matches)}: from another run of fold_matches")
        query_slots, photo_slots = chunk_matches["query_slot"].to_numpy(), chunk_matches["photo_slot"].to_numpy()
        for query, row, is_same, end, n in zip(chunk_pairs["query"], chunk_pairs["photo"], chunk_pairs["same"], ends,
                                              chunk_pairs["matches"]):
            pair_query_slots, pair_photo_slots = query_slots[end - n:end], photo_slots[end - n:end]
            if is_same:
                positives.append((query, row, pair_query_slots, pair_photo_slots))
                continue
            different[query, pair_query_slots] += 1
            different[row, pair_photo_slots] += 1
            checked.append((images[query], images[row], False, len(pair_query_slots)))
    for query, row, query_slots, photo_slots in positives:
        # the matches of keypoints not known to be background
        kept = (different[query, query_slots] == 0) & (different[row, photo_slots] == 0)
        query_slots, photo_slots = query_slots[kept], photo_slots[kept]
        inlier, _ = fit_transform(keypoints["xy"][query, query_slots], keypoints["xy"][row, photo_slots], settings,
                                  image_size)
        same[query, query_slots[inlier]] += 1
        same[row, photo_slots[inlier]] += 1
        checked.append((images[query], images[row], True, int(inlier.sum())))
    return KeypointLabels(same, different, pd.DataFrame(checked, columns=["image", "photo", "same", "inliers"]))


def _match_photo(catalogue: LocalCatalogue, xy: np.ndarray, descriptors: np.ndarray, photo_votes: np.ndarray,
                 own: str, foreground: ForegroundSettings) -> list[tuple[int, np.ndarray, np.ndarray, bool]]:
    """One asked photo's checked pairs (its keypoints' positions `xy`, RootSIFT `descriptors`,
    and the catalogue photos' votes): (catalogue photo, the query's and the photo's keypoints,
    whether of one individual). Of another individual's photo, the keypoints are the inliers;
    of its own, every ratio-test match, to be fitted once the background is known."""
    if len(xy) == 0:
        return []
    by_votes = np.argsort(-photo_votes, kind="stable")
    is_own = catalogue.individuals[catalogue.individual_of_photo[by_votes]] == own
    # new_whale photos are in no catalogue: every photo is of another individual
    positives = by_votes[is_own][:foreground.positives] if own != NEW_WHALE else by_votes[:0]
    negatives = by_votes[~is_own][:foreground.negatives]
    photos = np.concatenate([positives, negatives])
    keypoints = [catalogue.photo_keypoints(photo) for photo in photos]
    matches = ratio_matches(descriptors, [photo_descriptors for _, photo_descriptors in keypoints],
                            catalogue.settings.ratio)
    found = []
    for n, (photo, (photo_xy, _), (query_rows, photo_rows, _)) in enumerate(zip(photos, keypoints, matches)):
        if n >= len(positives):
            inlier, _ = fit_transform(xy[query_rows], photo_xy[photo_rows], catalogue.settings, catalogue.image_size)
            query_rows, photo_rows = query_rows[inlier], photo_rows[inlier]
        found.append((int(photo), query_rows, photo_rows, n < len(positives)))
    return found


def _trees(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(learning_rate=0.1, max_iter=150, max_leaf_nodes=31, min_samples_leaf=40,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


def enough_labels(labels: np.ndarray) -> bool:
    """Whether keypoints labelled on an individual (True) and on a background (False) are enough
    to learn a foreground from: `MIN_LABELS` of each."""
    labels = np.asarray(labels, bool)
    return labels.sum() >= MIN_LABELS and (~labels).sum() >= MIN_LABELS


@dataclass
class ForegroundModel:
    """P(on the animal) of a keypoint from its descriptor and place (`keypoint_features`), in
    keypoint positions of a `side` square. Without ``trees`` (`unlearned`), every keypoint's is 1,
    as with `local.foreground: none`."""

    trees: object | None
    side: int

    @classmethod
    def unlearned(cls, side: int) -> ForegroundModel:
        """The model of a catalogue too sparse to learn from: every keypoint weighs 1."""
        return cls(None, side)

    @property
    def learned(self) -> bool:
        return self.trees is not None

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, side: int, seed: int) -> ForegroundModel:
        """Trees fitted on labelled keypoints' `features`, as many of each class: all of the
        rarer class's, and as many of the other's drawn at random (`seed`)."""
        labels = np.asarray(labels, bool)
        if not enough_labels(labels):
            raise ValueError(f"the fit photos gave {int(labels.sum())} keypoints on an individual and "
                             f"{int((~labels).sum())} on a background: too few to learn a foreground from. Use "
                             "local.foreground: none, or a dataset with more individuals photographed more than once")
        # Balanced by drawing, not by sample weights: scikit-learn's histogram trees fit ten
        # times slower with any sample weights at all.
        rng = np.random.default_rng(seed)
        on, off = np.flatnonzero(labels), np.flatnonzero(~labels)
        n = min(len(on), len(off))
        kept = np.sort(np.concatenate([rng.permutation(on)[:n], rng.permutation(off)[:n]]))
        return cls(_trees(seed).fit(features[kept], labels[kept]), side)

    def probability(self, xy: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """P(on the animal) of each keypoint (positions `xy` in the `side` square, SIFT `descriptors`)."""
        if not len(xy):
            return np.zeros(0, np.float32)
        if not self.learned:
            return np.ones(len(xy), np.float32)
        return self.trees.predict_proba(keypoint_features(xy, descriptors, self.side))[:, 1].astype(np.float32)

    def weights(self, keypoints: np.ndarray) -> np.ndarray:
        """Every slot's weight of a keypoint cache (photos, slots): P(on the animal), 0 in unused slots."""
        weights = np.zeros(keypoints.shape, np.float32)
        for row, out in zip(keypoints, weights):
            used = ~np.isnan(row["xy"][:, 0])
            out[used] = self.probability(*unpack(row))
        return weights

    def save(self, path: str | Path) -> None:
        import joblib

        with atomic_output(path) as partial:
            joblib.dump({"features": POSITION_FEATURES, "trees": self.trees, "side": self.side}, partial)

    @classmethod
    def load(cls, path: str | Path) -> ForegroundModel:
        import joblib

        saved = joblib.load(path)
        if saved.get("features") != POSITION_FEATURES:
            raise ValueError(f"{path}: a foreground model of another whaleid: learn it again (delete it and rerun)")
        return cls(saved["trees"], int(saved["side"]))


def write_weights(model: ForegroundModel, keypoints_npy: str | Path, out_npy: str | Path) -> np.ndarray:
    """Every keypoint's weight of the cache at `keypoints_npy`, written to `out_npy` (.npy,
    (photos, slots) float32) and returned."""
    keypoints = np.asarray(read_keypoint_cache(str(keypoints_npy)))
    weights = model.weights(keypoints)
    with atomic_output(out_npy) as partial:
        np.save(partial, weights)
    used = weights[~np.isnan(keypoints["xy"][..., 0])]
    log.info("%s: %d keypoints weighed, median %.3f, %.1f%% above 0.5", out_npy, used.size,
             float(np.median(used)) if used.size else 0.0, 100 * float((used > 0.5).mean()) if used.size else 0.0)
    return weights


def read_fit_keypoints(train_npy: str | Path, train_index: str | Path, split_csv: str | Path,
                       strongest: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The fit photos' keypoint records (each photo's `strongest` first slots, or all) and their
    rows of the train table (id, image)."""
    keypoints, _ = read_keypoints(train_npy, train_index)
    train = train_table(train_index, split_csv, len(keypoints))
    fit_rows = np.flatnonzero((train["subset"] == "fit").to_numpy())
    return np.asarray(keypoints[fit_rows, :strongest]), train.iloc[fit_rows]


def foreground_matches(train_npy: str | Path, train_index: str | Path, split_csv: str | Path, *,
                       settings: MatchSettings, foreground: ForegroundSettings, image_size: int, n_jobs: int,
                       chunk: tuple[int, int] = (1, 1), strongest: int | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`fold_matches` of a dataset's fit photos (keypoints in the train .npy with its index
    .csv, each photo's `strongest` first or all; the subset in `split_csv`), of chunk `chunk`
    (k, n) only."""
    import faiss  # only the matching jobs need it

    faiss.omp_set_num_threads(n_jobs)
    fit_keypoints, fit = read_fit_keypoints(train_npy, train_index, split_csv, strongest)
    return fold_matches(fit_keypoints, fit["id"].to_numpy(), image_size=image_size, settings=settings,
                        foreground=foreground, n_jobs=n_jobs, chunk=chunk)


def learn_foreground(train_npy: str | Path, train_index: str | Path, split_csv: str | Path, *,
                     settings: MatchSettings, foreground: ForegroundSettings, image_size: int, n_jobs: int,
                     matched: tuple[Sequence[pd.DataFrame], Sequence[pd.DataFrame]] | None = None,
                     strongest: int | None = None) -> tuple[ForegroundModel, KeypointLabels]:
    """The foreground model of a dataset's fit photos (keypoints in the train .npy with its
    index .csv, each photo's `strongest` first or all: those `foreground_matches` matched;
    the subset in `split_csv`), and the labels it learned from (rows: the fit photos, in the
    cache's order). `matched`: the pairs and the matches tables of every chunk
    (`foreground_matches`), in order; None: matched here, in one chunk. Validation and test
    photos are never read."""
    from threadpoolctl import threadpool_limits

    fit_keypoints, fit = read_fit_keypoints(train_npy, train_index, split_csv, strongest)
    if matched is None:  # matched here, as foreground_matches matches, from the keypoints just read
        import faiss

        faiss.omp_set_num_threads(n_jobs)
        matched = tuple([table] for table in fold_matches(fit_keypoints, fit["id"].to_numpy(), image_size=image_size,
                                                          settings=settings, foreground=foreground, n_jobs=n_jobs))
    labels = labels_from_matches(fit_keypoints, fit["image"].to_numpy(), *matched, image_size=image_size,
                                 settings=settings)
    label = labels.labels()
    photo, slot = np.nonzero(label >= 0)
    log.info("foreground: %d keypoints of %d fit photos labelled, %d on an individual, %d on a background",
             len(photo), len(fit), int((label == 1).sum()), int((label == 0).sum()))
    if not enough_labels(label[photo, slot] == 1):
        # A sparse catalogue (a new project, Kaggle's skew) is normal, not an error: the method
        # goes on unweighed, as with local.foreground: none, and says so.
        log.warning("foreground NOT LEARNED: the fit photos gave too few keypoints verified on one individual "
                    "(%d) or on a background (%d), fewer than %d, as in a catalogue of mostly one photo per "
                    "individual; every keypoint weighs 1, as with local.foreground: none",
                    int((label == 1).sum()), int((label == 0).sum()), MIN_LABELS)
        return ForegroundModel.unlearned(image_size), labels
    features = keypoint_features(fit_keypoints["xy"][photo, slot], fit_keypoints["descriptor"][photo, slot], image_size)
    with threadpool_limits(n_jobs):
        model = ForegroundModel.fit(features, label[photo, slot] == 1, image_size, foreground.seed)
    return model, labels
