"""The local method's verifier: P(same individual) of a verified photo pair, learned from its match statistics.

An inlier count alone is a poor judge: a repeated texture (barnacles, callosities, stripes)
gives a wrong photo many inliers bunched in one spot with ambiguous descriptors, while a right
one may have fewer, spread over the whole pattern, with distinctive ones. As in HotSpotter's
successor (Crall 2017, ch. 4; Wildbook's `wbia/algo/verif`), a gradient-boosted tree ensemble
(scikit-learn's `HistGradientBoostingClassifier`, which takes missing values as they come) reads
every statistic `catalogue.LocalCatalogue.verify` records of a pair (`FEATURES`) and says how
likely the two photos are of one individual; a `calibration.Calibration` then makes that a
probability.

It learns from fit photos only, which are asked as validation and test photos are: the fit
photos are dealt into `folds`, and each fold's photos are matched against the other folds'
(`fold_pairs`): a pair is positive where both photos are of one individual. The calibration
is fitted on out-of-fold scores (trees trained on the other queries' pairs), so it sees
scores of pairs the trees did not learn from, as they will be at identification.

**Sparse catalogues.** Pairs of one individual come from individuals with more than one fit
photo: a catalogue of mostly one photo per individual may give too few to learn from
(`CALIBRATION_FOLDS` of each kind). Then there are no trees (`inlier_verifier`): a pair's score
is its foreground inlier count, calibrated by Platt's sigmoid where there is a pair of each
kind, or else by a prior (`calibration.prior_calibration`); the log says so, and identification
goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.identification.calibration import Calibration, fit_calibration, prior_calibration
from whaleid.identification.candidates import N_CANDIDATES
from whaleid.io.files import atomic_output
from whaleid.io.tables import train_table
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.chunks import FitFolds, gather_tables
from whaleid.methods.local.keypoints import read_keypoints, read_weights
from whaleid.methods.local.pooling import POOLINGS, individual_scores
from whaleid.settings import MatchSettings, VerifierSettings
from whaleid.vocabulary import FOLD_ANSWERS, NEW_WHALE, check_choice

log = logging.getLogger(__name__)
# What the trees read of a pair (`pairs.VERIFIED_COLUMNS` and `pairs.with_query_context`).
# Raw votes are left out: they grow with the catalogue, which is smaller in training (fit less
# a fold) than at test (all of train); their shares of the query's most do not.
FEATURES = ["inliers", "foreground_inliers", "foreground_share", "matches", "inlier_share", "inlier_gap",
            "guided_matches", "guided_foreground",
            "ratio_q10", "ratio_q50", "ratio_q90", "query_cover", "photo_cover", "log_scale", "abs_rotation",
            "query_keypoints", "photo_keypoints",
            "individual_vote_share", "photo_vote_share", "shortlist_rank"]
# Queries held out at a time for the out-of-fold scores the calibration is fitted on.
CALIBRATION_FOLDS = 3


def feature_matrix(pairs: pd.DataFrame) -> np.ndarray:
    """The `FEATURES` of each pair (a `catalogue.match_queries` table), (pairs, features) float."""
    return pairs.assign(abs_rotation=pairs["rotation"].abs())[FEATURES].to_numpy(np.float64)


def fold_pairs(keypoints: np.ndarray, ids: Sequence[str], images: Sequence[str], *, image_size: int,
               settings: MatchSettings, folds: int, max_queries: int | None, seed: int, n_jobs: int,
               weights: np.ndarray | None = None, chunk: tuple[int, int] = (1, 1), progress=None
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verified pairs of fit photos matched fold by fold: the photos (their keypoint rows
    `keypoints`, individuals `ids`, names `images`) dealt at random into `folds`, each fold's
    asked against a catalogue of the others' (as `catalogue.match_queries`); at most
    `max_queries` photos are asked (drawn at random; None: all), each against all of the other
    folds' photos. Adds ``image`` (the query photo), ``fold``, ``same`` (the catalogue photo
    is of the query's individual; never for a new_whale query) and ``survey_like`` (the pair is
    one of a catalogue in which the query's individual has as many photos as a survey's
    individual would: `survey_catalogue`, drawn for each query from `seed`); `weights`: the keypoints'
    (`foreground`), or None: all 1. ``photo`` is the catalogue
    photo's name, ``query`` numbers the photos in the order given. Also returns every photo
    asked (query, image, id, fold, and ``catalogue_individuals``: how many individuals its
    fold's catalogue holds; ``known``: whether its own is among them).

    `chunk` (k, n): only the asked photos of chunk k of n (`chunks.FitFolds.chunk`); the tables
    of the n chunks, concatenated in order, are those of one."""
    ids, images = np.asarray(ids, dtype=str), np.asarray(images, dtype=str)
    if not len(ids) == len(images) == len(keypoints):
        raise ValueError(f"{len(keypoints)} keypoint rows for {len(ids)} ids and {len(images)} images")
    fit_folds = FitFolds.draw(len(ids), folds, max_queries, seed)
    found, asked_photos = [], []
    # a chunk with no block to ask still gives the tables' columns, from fold 0 asking no photo
    parts = fit_folds.chunk(*chunk, settings.query_block) or [(0, np.zeros(0, np.int64))]
    for fold, asked in parts:
        catalogue_rows = fit_folds.catalogue_rows(fold)
        catalogue_ids = ids[catalogue_rows]
        catalogue = LocalCatalogue(keypoints[catalogue_rows], catalogue_ids, image_size, settings,
                                   None if weights is None else weights[catalogue_rows])
        by_fold = (lambda done, total, fold=fold: progress(fold, done, total)) if progress else None
        pairs = match_queries(catalogue, keypoints[asked], None if weights is None else weights[asked], n_jobs=n_jobs,
                              progress=by_fold)
        query = asked[pairs["query"].to_numpy()]
        in_catalogue = catalogue.photos[pairs["photo"].to_numpy()]
        photo = catalogue_rows[in_catalogue]
        # one row per asked photo, in the order match_queries numbers them
        survey = np.array([survey_catalogue(catalogue_ids, ids[row], np.random.default_rng([seed, int(row)]))
                           for row in asked], bool).reshape(len(asked), len(catalogue_rows))
        found.append(pairs.assign(query=query, image=images[query], photo=images[photo], fold=fold,
                                  same=(pairs["id"].to_numpy() == ids[query]) & (ids[query] != NEW_WHALE),
                                  survey_like=survey[pairs["query"].to_numpy(), in_catalogue]))
        asked_photos.append(pd.DataFrame({"query": asked, "image": images[asked], "id": ids[asked], "fold": fold,
                                          "catalogue_individuals": len(catalogue.individuals),
                                          "known": np.isin(ids[asked], catalogue.individuals)}))
    return pd.concat(found, ignore_index=True), pd.concat(asked_photos, ignore_index=True)


def _trees(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # A fixed number of rounds, no early stopping: early stopping holds out a random share of
    # the pairs, which would split one query's pairs between learning and stopping.
    return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=200, max_leaf_nodes=15, min_samples_leaf=20,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


@dataclass
class Verifier:
    """The trees and their calibration: `probability` of a pair being of one individual. And
    ``individuals``, by pooling, the calibration of an individual's pooled score
    (`pooling.individual_scores`) to P(it is the query's individual), which the local method
    answers with; ``absent``, that probability for an individual voting did not shortlist, which
    the fused method gives them."""

    trees: object | None
    calibration: Calibration
    individuals: dict[str, Calibration]
    absent: float

    @property
    def learned(self) -> bool:
        """Whether trees were learned; if not (`inlier_verifier`), a pair's score is its inliers."""
        return self.trees is not None

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        """The trees' log-odds of each pair, uncalibrated (without trees: its foreground inliers)."""
        if not len(pairs):
            return np.zeros(0)
        if not self.learned:
            return pairs["foreground_inliers"].to_numpy(np.float64)
        return self.trees.decision_function(feature_matrix(pairs))

    def probability(self, pairs: pd.DataFrame) -> np.ndarray:
        """P(same individual) of each of `pairs` (a `catalogue.match_queries` table)."""
        return self.calibration(self.score(pairs))

    def save(self, path: str | Path) -> None:
        import joblib

        with atomic_output(path) as partial:
            joblib.dump({"features": FEATURES, "trees": self.trees, "calibration": self.calibration.to_dict(),
                         "individuals": {name: c.to_dict() for name, c in self.individuals.items()},
                         "absent": self.absent}, partial)

    @classmethod
    def load(cls, path: str | Path) -> Verifier:
        import joblib

        saved = joblib.load(path)
        if saved.get("features") != FEATURES:
            raise ValueError(f"{path}: a verifier trained on features {saved.get('features')}, but this whaleid "
                             f"reads {FEATURES}: train it again (delete the file and rerun)")
        return cls(saved["trees"], Calibration.from_dict(saved["calibration"]),
                   {name: Calibration.from_dict(c) for name, c in saved["individuals"].items()}, float(saved["absent"]))


def train_verifier(pairs: pd.DataFrame, asked: pd.DataFrame, settings: VerifierSettings, n_jobs: int
                   ) -> tuple[Verifier, np.ndarray, np.ndarray]:
    """The verifier of the labelled `pairs` and the photos `asked` (`fold_pairs`), and two
    probabilities of each pair: held out, scored by trees that did not learn from its query's
    pairs through a calibration that was not fitted on them either, so that how well it holds
    can be checked honestly (`calibration.reliability`); and out of fold, those trees' scores
    through the verifier's calibration, which the individuals' calibrations are fitted on."""
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits

    same = pairs["same"].to_numpy(bool)
    if not enough_pairs(same):
        raise ValueError(f"the fit photos gave {int(same.sum())} verified pairs of one individual and "
                         f"{int((~same).sum())} of two: too few to train a verifier on. Use local.scoring: inliers, "
                         "or a dataset with more individuals photographed more than once")
    features, queries = feature_matrix(pairs), pairs["query"].to_numpy()
    held_out = np.zeros(len(pairs))
    folds = list(GroupKFold(CALIBRATION_FOLDS).split(features, same, queries))
    with threadpool_limits(n_jobs):
        for learn, score in folds:
            trees = _trees(settings.seed).fit(features[learn], same[learn])
            held_out[score] = trees.decision_function(features[score])
        calibration = fit_calibration(held_out, same, settings.calibration)
        trees = _trees(settings.seed).fit(features, same)
    checked = np.zeros(len(pairs))
    for learn, score in folds:
        checked[score] = fit_calibration(held_out[learn], same[learn], settings.calibration)(held_out[score])
    out_of_fold = calibration(held_out)
    individuals, absent = individual_calibrations(pairs.assign(probability=out_of_fold), asked, settings.calibration)
    log.info("verifier: %d pairs (%d of one individual) from %d fit photos; %s calibration; an individual not "
             "shortlisted is the query's with probability %.2g", len(pairs), int(same.sum()), len(np.unique(queries)),
             calibration.method, absent)
    return Verifier(trees, calibration, individuals, absent), checked, out_of_fold


def enough_pairs(same) -> bool:
    """Whether verified pairs of one individual (True) and of two (False) are enough to train
    trees on: `CALIBRATION_FOLDS` of each."""
    same = np.asarray(same, bool)
    return same.sum() >= CALIBRATION_FOLDS and (~same).sum() >= CALIBRATION_FOLDS


def inlier_verifier(pairs: pd.DataFrame, asked: pd.DataFrame) -> tuple[Verifier, np.ndarray]:
    """The verifier of a catalogue with too few pairs of one individual to train on: no trees, a
    pair's score its foreground inliers, calibrated by Platt's sigmoid where `pairs` hold one of
    each kind, or else by `calibration.prior_calibration`; an individual's pooled probability
    taken as it is. Returns it and each pair's probability."""
    inliers, same = pairs["foreground_inliers"].to_numpy(np.float64), pairs["same"].to_numpy(bool)
    fitted = same.any() and not same.all()
    calibration = fit_calibration(inliers, same, "sigmoid") if fitted else prior_calibration(inliers)
    as_it_is = Calibration("isotonic", np.array([0.0, 1.0]), np.array([0.0, 1.0]), 1.0, 0.0, 0.5, 1.0)
    verifier = Verifier(None, calibration, dict.fromkeys(POOLINGS, as_it_is), absent_share(pairs, asked))
    log.warning("verifier NOT LEARNED: the fit photos gave %d verified pairs of one individual and %d of two, "
                "fewer than %d of each, as in a catalogue of mostly one photo per individual; pairs are scored by "
                "their inliers, calibrated by %s", int(same.sum()), int((~same).sum()), CALIBRATION_FOLDS,
                "a sigmoid fitted on them" if fitted else "a prior, not on data")
    return verifier, verifier.probability(pairs)


def individual_calibrations(pairs: pd.DataFrame, asked: pd.DataFrame, method: str
                            ) -> tuple[dict[str, Calibration], float]:
    """For each pooling, the calibration of the pooled score of an individual (from the
    `pairs`' out-of-fold ``probability``) to P(it is the query's individual); and that
    probability for the individuals of a fold's catalogue that were not shortlisted: the share
    of them that were the asked photo's individual (`asked`, as `fold_pairs` returns it)."""
    truth = asked.set_index("query")["id"]
    calibrations = {}
    for pooling in POOLINGS:
        table = individual_scores(pairs, "verifier", pooling)
        calibrations[pooling] = fit_calibration(table["score"], table["id"].to_numpy() == table["query"].map(truth),
                                                method)
    return calibrations, absent_share(pairs, asked)


def fold_answers(pairs: pd.DataFrame, asked: pd.DataFrame, individuals: dict[str, Calibration]) -> pd.DataFrame:
    """Each photo `asked`'s answers out of fold, by each pooling (as `fold_pairs` returns them;
    `pairs` with each pair's out-of-fold ``probability``): its `N_CANDIDATES` best individuals,
    as identification ranks them. ``image``, its ``id`` and whether that individual is in its
    fold's catalogue (``known``), the ``pooling``, the ``rank`` (from 0), the individual there
    (``answer``), its ``probability`` of being the photo's individual through `individuals`
    (the verifier's calibrations, by pooling) and whether it is (``right``); a photo nothing
    verified for has one row, rank 0, answer empty, probability NaN. Thousands of answers whose
    truth is known, given as identification gives them: the auto-accept threshold is chosen on
    their rank 1 (`identification.auto_accept`), the new_whale threshold on all of them
    (`identification.fold_threshold`)."""
    tables = []
    for pooling in POOLINGS:
        best = individual_scores(pairs, "verifier", pooling).query(f"rank < {N_CANDIDATES}")
        table = asked[["query", "image", "id", "known"]].merge(
            best[["query", "rank", "id", "score"]].rename(columns={"id": "answer"}), on="query", how="left")
        answered = table["score"].notna().to_numpy()
        probability = np.full(len(table), np.nan)
        probability[answered] = individuals[pooling](table["score"].to_numpy(np.float64)[answered])
        table = table.assign(pooling=pooling, rank=table["rank"].fillna(0).astype(int),
                             answer=table["answer"].fillna("").astype(str), probability=probability)
        table["right"] = (table["answer"] == table["id"]) & (table["id"] != NEW_WHALE)
        tables.append(table[["image", "id", "known", "pooling", "rank", "answer", "probability", "right"]])
    return pd.concat(tables, ignore_index=True)


def survey_catalogue(catalogue_ids: np.ndarray, own: str, rng: np.random.Generator) -> np.ndarray:
    """Which photos of a fold's catalogue (their individuals `catalogue_ids`) a fit photo of
    individual `own` is answered against as a survey photo would be: every other individual's,
    and of its own as many, drawn at random, as an individual drawn at random from the catalogue
    has (all of its own where it has fewer). A boolean mask over the catalogue.

    Fit photos are drawn photo by photo, so they are mostly of the few individuals photographed
    most, which the other folds hold several photos of and which are easy to answer; a survey
    photographs individuals, most of which a catalogue holds one photo of (on the right whales,
    half of the catalogue's individuals, and 884 of the 1,381 test photos of known ones). Answered
    against every photo of their own, the fit photos were right 85% of the time between
    probabilities 0.55 and 0.92, the test photos 52%, and a threshold chosen on them promised
    more than it held (README, "Auto-accept, stated honestly")."""
    catalogue_ids = np.asarray(catalogue_ids, dtype=str)
    keep = catalogue_ids != own
    photos = np.flatnonzero(~keep)
    if own == NEW_WHALE or not len(photos):
        return np.ones(len(catalogue_ids), bool)
    _, counts = np.unique(catalogue_ids[catalogue_ids != NEW_WHALE], return_counts=True)
    drawn = int(rng.choice(counts))
    keep[rng.choice(photos, min(drawn, len(photos)), replace=False)] = True
    return keep


def absent_share(pairs: pd.DataFrame, asked: pd.DataFrame) -> float:
    """Of the individuals of a fold's catalogue that were not shortlisted, the share that were
    the asked photo's individual (`pairs` and `asked` as `fold_pairs` returns them)."""
    shortlisted = pairs.groupby("query")["id"].agg(set)
    listed = asked["query"].map(shortlisted).apply(lambda ids: ids if isinstance(ids, set) else set())
    missed = asked["known"] & ~np.array([own in ids for own, ids in zip(asked["id"], listed)], bool)
    not_listed = (asked["catalogue_individuals"] - listed.apply(len)).sum()
    return float(missed.sum() / max(not_listed, 1))


def verifier_pairs(train_npy: str | Path, train_index: str | Path, split_csv: str | Path, *,
                   settings: MatchSettings, verifier_settings: VerifierSettings, image_size: int, n_jobs: int,
                   weights_npy: str | Path | None = None, chunk: tuple[int, int] = (1, 1), progress=None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verified pairs a verifier learns from, and the photos asked (`fold_pairs`), of a
    dataset's fit photos (their keypoints in the train .npy with its index .csv, their subset in
    `split_csv`; their keypoints' weights in `weights_npy`, or None: all 1); of chunk `chunk`
    (k, n) only. ``query`` numbers the fit photos. Validation and test photos are never read."""
    import faiss  # only the matching jobs need it

    faiss.omp_set_num_threads(n_jobs)
    keypoints, _ = read_keypoints(train_npy, train_index)
    train = train_table(train_index, split_csv, len(keypoints))
    fit_rows = np.flatnonzero((train["subset"] == "fit").to_numpy())
    fit = train.iloc[fit_rows]
    weights = None if weights_npy is None else read_weights(weights_npy, keypoints)[fit_rows]
    return fold_pairs(keypoints[fit_rows], fit["id"].to_numpy(), fit["image"].to_numpy(), image_size=image_size,
                      settings=settings, folds=verifier_settings.folds, max_queries=verifier_settings.max_queries,
                      seed=verifier_settings.seed, n_jobs=n_jobs, weights=weights, chunk=chunk, progress=progress)


def learn_verifier(pairs: Sequence[pd.DataFrame], asked: Sequence[pd.DataFrame], *,
                   verifier_settings: VerifierSettings, n_jobs: int, answers_against: str = FOLD_ANSWERS[0]
                   ) -> tuple[Verifier, pd.DataFrame, pd.DataFrame]:
    """The verifier learned from the fit photos' pairs and the photos asked (`verifier_pairs`,
    the tables of every chunk in order): `train_verifier`, or without enough pairs of one
    individual `inlier_verifier`. Returns it, the pairs it learned from (image, photo, id, the
    statistics, same, fold, survey_like, and the held-out ``probability``) and the asked photos'
    answers out of fold (`fold_answers`): `answers_against` ``survey``, against catalogues as a
    survey's (`survey_catalogue`); ``all``, against every photo of the other folds."""
    check_choice("fold answers", answers_against, FOLD_ANSWERS)
    pairs, asked = gather_tables(pairs), gather_tables(asked)
    if enough_pairs(pairs["same"]):
        verifier, held_out, out_of_fold = train_verifier(pairs, asked, verifier_settings, n_jobs)
    else:
        # A sparse catalogue (a new project, Kaggle's skew) is normal, not an error.
        verifier, held_out = inlier_verifier(pairs, asked)
        out_of_fold = held_out
    scored = pairs.assign(probability=out_of_fold)
    if answers_against == "survey":
        scored = scored[scored["survey_like"].to_numpy(bool)]
    answers = fold_answers(scored, asked, verifier.individuals)
    pairs = pairs.assign(probability=held_out).drop(columns=["query", "individual"])
    return verifier, pairs[["image", "photo", "id", "same", "fold", *pairs.columns.drop(["image", "photo", "id", "same",
                                                                                          "fold"])]], answers
