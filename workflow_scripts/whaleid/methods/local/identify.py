"""The local method's identification of the validation and test photos.

Each search's queries are matched against its catalogue (`catalogue.match_queries`: a
shortlist by voting, then a geometric check) in chunks, each a job of its own (`match_chunk`,
rule local_match); once gathered (`identify`), each shortlisted individual is scored (`pooling`),
and each query's four best individuals by score (then inliers, then votes) are its
`candidates.Candidates`; where it self-trains (`self_training`), the queries answered surely
join the catalogue and the others are matched again against it (`keypoint_matcher`). The method then
ends as every method does (`answers.answer`): duplicates first, `new_whale` below a threshold
chosen on the fit photos' out-of-fold answers (`fold_threshold`) or on validation. Once answered,
the test photos answered new_whale first are matched against each other, and those that match
surely proposed as one new individual (`propose_new_individuals`, rule local_new_individuals).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.evaluation.submission import most_frequent_ids, read_predictions
from whaleid.identification.answers import Identification, answer, choose_on_validation
from whaleid.identification.auto_accept import AutoAccept, chosen_pooling, fold_answers_auto_accept
from whaleid.identification.candidates import Candidates, Individuals
from whaleid.identification.fold_threshold import can_weigh, fold_threshold
from whaleid.identification.search import Queries, Search
from whaleid.methods.local.catalogue import LocalCatalogue, match_queries
from whaleid.methods.local.chunks import chunk_rows, gather_tables
from whaleid.methods.local.keypoints import read_keypoints, read_weights
from whaleid.methods.local.new_individuals import no_proposal, propose
from whaleid.methods.local.pairs import checked_before
from whaleid.methods.local.pooling import POOLINGS, individual_scores, shortlist_candidates
from whaleid.methods.local.self_training import self_train
from whaleid.settings import MatchSettings
from whaleid.vocabulary import LOCAL_SCORINGS, NEW_WHALE, THRESHOLD_ON, check_choice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalIdentification(Identification):
    """The local method's answers, with by split (validation, test): every verified pair
    (``pairs``: image, photo, id and the pair's statistics, and its ``probability`` where the
    verifier scored it) and every query's shortlisted individuals (``shortlists``: image, rank,
    id, votes, inliers, score, and where the verifier scored them the ``probability`` that each
    is the query's individual, which the fused method reads); and the poolings tried on
    validation (``poolings``: pooling, map5 on validation, threshold, chosen, and where the
    threshold was chosen on the fit photos' out-of-fold answers their weighted ``fold_map5``);
    and the queries self-training accepted, by split (``pseudo_labels``: image, id,
    probability, round), whose photos are among the pairs' catalogue photos."""

    pairs: dict[str, pd.DataFrame]
    shortlists: dict[str, pd.DataFrame]
    poolings: pd.DataFrame
    pseudo_labels: dict[str, pd.DataFrame]


@dataclass(frozen=True)
class SelfTraining:
    """How the local method self-trains (`self_training.self_train`): at most `rounds` rounds,
    accepting the answers at or above the probability where the fit photos' out-of-fold answers
    are right `precision` of the time (with 90% confidence); `matcher(search)` matches some of
    a search's queries again, against its catalogue grown by others (`keypoint_matcher`)."""

    rounds: int
    precision: float
    matcher: Callable[[Search], Callable[[np.ndarray, np.ndarray, np.ndarray], pd.DataFrame]]


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
    return named_pairs(found, np.arange(rows.start, rows.stop), searched.queries["image"].to_numpy(),
                       searched.catalogue["image"].to_numpy()[catalogue.photos], verifier)


def named_pairs(found: pd.DataFrame, queries: np.ndarray, images: np.ndarray, photo_names: np.ndarray,
                verifier=None) -> pd.DataFrame:
    """`match_queries`' pairs as identification reads them: ``query`` the query's number in its
    search (`queries`, by the number `match_queries` gave it), ``image`` its name (`images`, by
    that number), ``photo`` the catalogue photo's name (`photo_names`, by the catalogue's photo),
    and where `verifier` is given, each pair's ``probability``."""
    found["query"] = queries[found["query"].to_numpy()]
    if verifier is not None:
        found["probability"] = verifier.probability(found)
    found.insert(0, "image", images[found["query"].to_numpy()])
    found["photo"] = photo_names[found["photo"].to_numpy()]
    return found


def keypoint_matcher(train: tuple[str | Path, str | Path], test: tuple[str | Path, str | Path], *,
                     settings: MatchSettings, image_size: int, verifier, n_jobs: int,
                     weights: tuple[str | Path, str | Path] | None = None):
    """The `SelfTraining.matcher` of the keypoints of train and test (each .npy with its index
    .csv; `weights`: theirs, or None: all 1): for a `Search`, the function that matches some of
    its queries (numbers) against its catalogue grown by the photos of others as photos of given
    ids, as `match_chunk` matches them against the catalogue, their pairs as `named_pairs` gives
    them. A query among those added is never matched with its own photo; its pairs `before` (as
    `named_pairs` gives them, or None) are not checked again where a photo is shortlisted again."""
    import faiss  # only the matching jobs need it

    faiss.omp_set_num_threads(n_jobs)
    train_keypoints, _ = read_keypoints(*train)
    test_keypoints, _ = read_keypoints(*test)
    train_weights, test_weights = (None, None) if weights is None else (
        read_weights(weights[0], train_keypoints), read_weights(weights[1], test_keypoints))

    def matcher(search: Search):
        images = search.queries["image"].to_numpy()

        def grown(train_values, test_values, added: np.ndarray) -> np.ndarray | None:
            if train_values is None:
                return None
            return np.concatenate([search.catalogue_values(train_values, test_values),
                                   search.query_values(train_values, test_values, added)])

        def values(train_values, test_values, rows):
            return None if train_values is None else search.query_values(train_values, test_values, rows)

        def match(added: np.ndarray, ids: np.ndarray, queries: np.ndarray, before: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
            catalogue = LocalCatalogue(grown(train_keypoints, test_keypoints, added),
                                       np.concatenate([search.catalogue_ids, ids]), image_size, settings,
                                       grown(train_weights, test_weights, added))
            # each added photo's position in the catalogue (which sorts its photos by individual)
            position = np.full(len(search.catalogue_ids) + len(added), -1, np.int64)
            position[catalogue.photos] = np.arange(len(catalogue.photos))
            added_at = dict(zip(added.tolist(), position[len(search.catalogue_ids):].tolist()))
            own = np.array([added_at.get(query, -1) for query in queries.tolist()], np.int64)
            names = np.concatenate([search.catalogue["image"].to_numpy(), images[added]])[catalogue.photos]
            checked = None
            # a pair names its photo: where two catalogue photos share a name, every pair is checked again
            if before is not None and len(set(names)) == len(names):
                checked = checked_before(before, queries, dict(zip(names.tolist(), range(len(names)))))
            found = match_queries(catalogue, values(train_keypoints, test_keypoints, queries),
                                  values(train_weights, test_weights, queries), own_photos=own,
                                  checked_before=checked, n_jobs=n_jobs)
            return named_pairs(found, queries, images, names, verifier)

        return match

    return matcher


def ranked_individuals(found: pd.DataFrame, scoring: str, pooling: str, verifier=None) -> pd.DataFrame:
    """Each query's shortlisted individuals in `found` (its verified pairs) scored by `scoring`
    and `pooling` (`pooling.individual_scores`), and where `verifier` is given, with the
    ``probability`` it calibrates that score to."""
    shortlists = individual_scores(found, scoring, pooling)
    if verifier is not None:
        # P(the individual is the query's): the pooled score calibrated, strictly increasing,
        # so the ranking is the score's and the new_whale threshold is a probability
        shortlists["probability"] = verifier.individuals[pooling](shortlists["score"])
    return shortlists


def identify(pairs: dict[str, Sequence[pd.DataFrame]], train_index: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, scoring: str, verifier=None,
             phash_distances: Sequence[int], thresholds: Sequence[float], threshold_on: str = "validation",
             fold_answers: pd.DataFrame | None = None, self_training: SelfTraining | None = None,
             reviewed: str | Path | None = None, encounters: str | Path | None = None) -> LocalIdentification:
    """The method's answers from each search's verified pairs (`pairs`: by search, the tables
    `match_chunk` gave for its chunks, in order): each shortlisted individual scored
    (`individual_scores`) by its inliers (`scoring` ``inliers``) or by its photos'
    probabilities from `verifier` (a `verifier.Verifier`), pooled as chosen on validation and
    calibrated to P(it is the query's individual) (``probability``); then answered as every
    method is, the new_whale threshold (of `thresholds`: inliers, or that probability) chosen on
    validation, or (`threshold_on` ``fit_folds``) on the fit photos' out-of-fold answers,
    `fold_answers` (`verifier.fold_answers`; `fold_threshold`, weighed to validation's share of
    new whales), validation then choosing only the duplicates' distance and the pooling.
    With `self_training` (and its `fold_answers`), both searches self-train once the pooling is
    chosen (`self_training.self_train`); a photo a person identified is never pseudo-labelled.
    `reviewed`, `encounters`: as `Queries.read`."""
    check_choice("scoring", scoring, LOCAL_SCORINGS)
    check_choice("new_whale threshold_on", threshold_on, THRESHOLD_ON)
    if (scoring == "verifier") != (verifier is not None):
        raise ValueError(f"scoring {scoring!r} with{'out' if verifier is None else ''} a verifier")
    self_trains = self_training is not None and self_training.rounds > 0
    if (threshold_on == "fit_folds" or self_trains) and (scoring != "verifier" or fold_answers is None):
        raise ValueError("a new_whale threshold chosen on the fit photos' out-of-fold answers, and self-training, "
                         "need the verifier's out-of-fold answers (scoring verifier, fold_answers)")
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
        shortlists = ranked_individuals(matched[search.split], scoring, pooling, verifier)
        return shortlists, shortlist_candidates(shortlists, len(search.queries), fallback[search.split],
                                                "score" if verifier is None else "probability")

    validation, test = searches
    # how many new whales validation holds, which its split's design sets: not which they are
    new_share = float((validation.queries["truth"] == NEW_WHALE).mean())
    if threshold_on == "fit_folds" and not can_weigh(fold_answers, new_share):
        # a catalogue of one photo per individual asks no fit photo whose individual the other folds hold
        log.warning("new_whale threshold NOT chosen on the fit photos' out-of-fold answers: they lack the known or "
                    "the new individuals validation's %.1f%% new whales are weighed with; chosen on validation",
                    100 * new_share)
        threshold_on = "validation"
    tried, validation_by_pooling, fold_curves = [], {}, {}
    for pooling in POOLINGS if scoring == "verifier" else ("max",):
        validation_by_pooling[pooling] = candidates(validation, pooling)
        tried_thresholds = thresholds
        if threshold_on == "fit_folds":
            threshold, fold_curves[pooling] = fold_threshold(fold_answers, pooling, thresholds, new_share)
            tried_thresholds = [threshold]
        choice = choose_on_validation(validation, validation_by_pooling[pooling][1], phash_distances,
                                      tried_thresholds)
        tried.append((pooling, choice.map5, choice.threshold))
    poolings = pd.DataFrame(tried, columns=["pooling", "map5", "threshold"])
    best = int(np.argmax(poolings["map5"].to_numpy()))
    poolings["chosen"] = poolings.index == best
    pooling = poolings.loc[best, "pooling"]
    pseudo_labels = {}
    if self_trains:
        accept = fold_answers_auto_accept(fold_answers, pooling, self_training.precision)
        if accept.chosen_accepted:
            log.info("self-training accepts answers at or above %.4g: %d of %d fit photos' out-of-fold answers there, "
                     "%.1f%% right (at least %.1f%%, 90%% confidence)", accept.threshold, accept.chosen_accepted,
                     accept.chosen_answers, 100 * accept.chosen_precision, 100 * accept.lower_bound)
        else:
            log.warning("self-training accepts NOTHING: no probability made the fit photos' %d out-of-fold answers "
                        "above it right %g%% of the time with 90%% confidence", accept.chosen_answers,
                        100 * self_training.precision)
        for search in searches:
            matched[search.split], labels = self_train(
                matched[search.split], len(search.queries),
                rank=lambda found: ranked_individuals(found, scoring, pooling, verifier),
                match=self_training.matcher(search), accept=accept.threshold, rounds=self_training.rounds,
                fixed=search.queries["image"].isin(queries.reviewed["image"]).to_numpy(),
                what=f"{search.split} photos")
            pseudo_labels[search.split] = labels
        validation_by_pooling[pooling] = candidates(validation, pooling)
    (validation_shortlists, validation_candidates), (test_shortlists, test_candidates) = (
        validation_by_pooling[pooling], candidates(test, pooling))
    answers = answer(queries, validation_candidates, test_candidates, phash_distances,
                     thresholds if threshold_on == "validation" else [poolings.loc[best, "threshold"]], log)
    curve = answers.curve
    if threshold_on == "fit_folds":
        poolings["fold_map5"] = [fold_curves[name].loc[fold_curves[name]["chosen"], "map5"].iloc[0]
                                 for name in poolings["pooling"]]
        curve = fold_and_validation_curve(fold_curves[pooling], validation, validation_candidates, phash_distances,
                                          thresholds, answers.curve)
        asked = fold_answers.loc[fold_answers["pooling"] == pooling, "image"].nunique()
        log.info("new_whale threshold %g chosen on %d fit photos' out-of-fold answers (%s pooling), weighed to "
                 "validation's %.1f%% new whales: MAP@5 %.4f there; on validation %.4f, where the best of its own "
                 "curve was %.4f", answers.chosen, asked, pooling, 100 * new_share, poolings.loc[best, "fold_map5"],
                 poolings.loc[best, "map5"], curve["map5"].max())
    shortlists = {}
    for search, table in ((validation, validation_shortlists), (test, test_shortlists)):
        images = search.queries["image"].to_numpy()
        table = table.assign(image=images[table["query"].to_numpy()] if len(table) else [])
        shortlists[search.split] = table.drop(columns="query")[["image", *table.columns.drop(["image", "query"])]]
    pairs = {split: table.drop(columns=["query", "individual"]) for split, table in matched.items()}
    labelled = {}
    for search in searches:
        labels = pseudo_labels.get(search.split, pd.DataFrame({"query": pd.Series(dtype=int), "id": [],
                                                               "probability": [], "round": pd.Series(dtype=int)}))
        images = search.queries["image"].to_numpy()
        labelled[search.split] = pd.DataFrame({"image": images[labels["query"].to_numpy(np.int64)],
                                               "id": labels["id"].astype(str).to_numpy(),
                                               "probability": labels["probability"].to_numpy(np.float64),
                                               "round": labels["round"].to_numpy(np.int64)})
    return LocalIdentification(answers.validation, answers.test, curve, answers.chosen, pairs, shortlists, poolings,
                               labelled)


def fold_and_validation_curve(fold_curve: pd.DataFrame, validation: Search, candidates: Candidates,
                              phash_distances: Sequence[int], thresholds: Sequence[float], chosen: pd.DataFrame
                              ) -> pd.DataFrame:
    """Where the new_whale threshold was chosen on the fit photos' out-of-fold answers, the curve
    the report draws: validation's MAP@5 at every threshold and duplicate distance (the check),
    the weighted out-of-fold MAP@5 beside it (``fold_map5``, by threshold), and ``chosen`` the
    row of the threshold and distance answered with (`chosen`: `answers.answer`'s curve)."""
    curve = choose_on_validation(validation, candidates, phash_distances, thresholds).curve
    picked = chosen.loc[chosen["chosen"]].iloc[0]
    curve["chosen"] = (curve["max_distance"] == picked["max_distance"]) & (curve["threshold"] == picked["threshold"])
    return curve.merge(fold_curve[["threshold", "map5"]].rename(columns={"map5": "fold_map5"}), on="threshold",
                       how="left")


def propose_new_individuals(test_predictions: str | Path, train_index: str | Path, test_index: str | Path,
                            split_csv: str | Path, manifest_csv: str | Path, *, matcher, verifier,
                            fold_answers: pd.DataFrame, poolings_csv: str | Path, precision: float,
                            reviewed: str | Path | None = None) -> tuple[pd.DataFrame, AutoAccept]:
    """The test photos the local method answered new_whale first (`test_predictions`, its
    predictions/test.csv), less those a person decided (`reviewed`), matched against each other
    by `matcher` (`keypoint_matcher`) and proposed as new individuals (`new_individuals.propose`):
    linked at the probability where the fit photos' out-of-fold answers (`fold_answers`, by the
    pooling chosen in `poolings_csv`) are right `precision` of the time with 90% confidence, as
    self-training accepts (`fold_answers_auto_accept`). Returns the proposal (`PROPOSED_COLUMNS`) and
    that threshold."""
    pooling = chosen_pooling(poolings_csv)
    accept = fold_answers_auto_accept(fold_answers, pooling, precision)
    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed)
    test = queries.searches()[1]
    images = test.queries["image"].to_numpy()
    answers = read_predictions(test_predictions)
    missing = sorted(set(images) - set(answers))
    if missing:
        raise ValueError(f"{test_predictions}: no answer for the test photo {missing[0]!r} ({len(missing)} missing): "
                         "the predictions are of another run; rerun local_identify")
    decided = set(queries.reviewed["image"])
    new = np.flatnonzero([answers[image][0] == NEW_WHALE and image not in decided for image in images])
    if not np.isfinite(accept.threshold):
        log.warning("no new individual proposed: no probability made the fit photos' %d out-of-fold answers above it "
                    "right %g%% of the time with 90%% confidence", accept.chosen_answers, 100 * precision)
        return no_proposal(), accept
    log.info("%d test photos answered new_whale first are matched against each other; linked at or above %.4g (%s "
             "pooling: %d of %d fit photos' out-of-fold answers there, %.1f%% right)", len(new), accept.threshold,
             pooling, accept.chosen_accepted, accept.chosen_answers, 100 * accept.chosen_precision)
    proposal = propose(new, images, match=matcher(test), accept=accept.threshold,
                       rank=lambda found: ranked_individuals(found, "verifier", pooling, verifier))
    return proposal, accept
