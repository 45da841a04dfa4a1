"""The fused method: the local method's and the metric-learning method's calibrated probabilities combined.

The two fail differently: keypoint matching is sure of itself where the same spots are seen
again and silent where a photo is blurred, shot from far off or shows another part of the
animal; an embedding always ranks every individual, roughly. Their raw scores (a verifier's
pooled probability, a cosine similarity) are on unrelated scales, so, as WildFusion does
(Čermák et al. 2024), each is first made a probability that the individual is the query's,
from fit photos only:

- the local method's: its verifier's calibration of an individual's pooled score
  (`local.verifier.Verifier.individuals`, the ``probability`` of its shortlists), and for the
  individuals voting did not shortlist, the share of such individuals that were the query's
  on the fit folds (`Verifier.absent`);
- the embedding's: a `calibration.Calibration` of the individual's similarity (as
  `metric_learning.retrieval.individual_scores` aggregates it), fitted on each fit photo's
  similarities to the other fit photos' individuals (`embedding_calibration`).

Each individual's fused score is then

    weight * local probability + (1 - weight) * embedding probability

with the weight and the new_whale threshold (a probability) chosen together on the validation
split by MAP@5, like every other method's threshold; a weight of 0 is the embedding alone, 1
the keypoints alone (the embedding then only orders the unverified). The classifier is not
among the inputs: its softmax has seen every fit photo's label in training, so no calibration
of it can be fitted on fit photos. numpy and pandas only, but for the calibrations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.identification.answers import Identification, answer, choose_on_validation
from whaleid.identification.calibration import (
    Calibration,
    expected_calibration_error,
    fit_calibration,
    prior_calibration,
)
from whaleid.identification.candidates import Candidates, Individuals, candidates_from_scores
from whaleid.identification.search import Queries, Search
from whaleid.io.tables import read_table
from whaleid.methods.metric_learning.retrieval import individual_scores, normalise, read_embeddings

log = logging.getLogger(__name__)

# What the embedding adds where the weight is 1: it orders the individuals no keypoint
# verified, without moving any verified one.
TIE_BREAK = 1e-6
# How far above `absent` a shortlisted individual stays, relatively (`local_probability_matrix`).
FLOOR_MARGIN = 1e-3


def local_probability_matrix(shortlists: pd.DataFrame, queries: Sequence[str], individuals: Sequence[str],
                             absent: float) -> np.ndarray:
    """(queries, individuals) P(the individual is the query's) by the local method: each
    shortlisted individual's ``probability`` (`shortlists`: image, id, probability), but never
    below `absent`, which the individuals not shortlisted get. Shortlisted ids that are not among `individuals` (not
    in the embedding's catalogue) and images that are not `queries` raise ValueError."""
    if not 0 <= absent <= 1:
        raise ValueError(f"the probability of an individual not shortlisted must be in [0, 1], got {absent}")
    row_of = {name: i for i, name in enumerate(queries)}
    column_of = {name: j for j, name in enumerate(individuals)}
    unknown_queries = sorted(set(shortlists["image"]) - set(row_of))
    if unknown_queries:
        raise ValueError(f"shortlists name {len(unknown_queries)} photos that are not queries here, e.g. "
                         f"{unknown_queries[:3]}")
    unknown_ids = sorted(set(shortlists["id"]) - set(column_of))
    if unknown_ids:
        raise ValueError(f"shortlists name {len(unknown_ids)} individuals the embedding's catalogue lacks, e.g. "
                         f"{unknown_ids[:3]}")
    probabilities = np.full((len(queries), len(individuals)), absent, np.float64)
    listed = shortlists["probability"].to_numpy(np.float64)
    # A shortlisted individual is never less likely than one voting passed over: below `absent`
    # a calibration is fitted on the fewest pairs of one individual, and there it only tells
    # how badly verification failed. The floor keeps the local method's own order, shortlisted
    # first, so a weight of 1 answers as it does.
    listed = np.maximum(listed, absent * (1 + FLOOR_MARGIN)) + FLOOR_MARGIN * 1e-6 * listed
    probabilities[shortlists["image"].map(row_of).to_numpy(), shortlists["id"].map(column_of).to_numpy()] = listed
    return probabilities


def leave_one_out_scores(embeddings: np.ndarray, ids: Sequence[str], *, aggregate: str, top_k: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each photo's scores for every known individual among the other photos (`embeddings`
    of `ids`; new_whale photos are of no individual), aggregated as `individual_scores` does
    (its best photo, or the mean of its `top_k` best, as many as it has), the photo itself left
    out: (individuals, scores (photos, individuals), present), where ``present`` is False where
    the individual has no photo but the one asking."""
    ids = np.asarray(ids, dtype=str)
    embeddings = normalise(np.asarray(embeddings, np.float32))
    grouped = Individuals.of(ids, enough_for_answers=False)
    similarities = (embeddings @ embeddings[grouped.photos].T).astype(np.float64)
    # the photo itself is never its own catalogue
    similarities[grouped.photos, np.arange(len(grouped.photos))] = -np.inf
    k = 1 if aggregate == "max" else top_k
    scores = np.empty((len(ids), len(grouped.ids)))
    for individual, members in enumerate(grouped.members()):
        best = -np.sort(-similarities[:, members], axis=1)[:, :k]
        finite = np.isfinite(best)
        count = finite.sum(axis=1)
        scores[:, individual] = np.where(count > 0, np.where(finite, best, 0).sum(axis=1) / np.maximum(count, 1),
                                         -np.inf)
    return grouped.ids, scores, np.isfinite(scores)


def embedding_calibration(embeddings: np.ndarray, ids: Sequence[str], *, aggregate: str, top_k: int,
                          method: str) -> tuple[Calibration, pd.DataFrame]:
    """The calibration of the embedding's individual scores to P(the individual is the
    query's), fitted on every photo of `embeddings` (the fit photos) asked against the other
    photos' individuals (`leave_one_out_scores`); and the pairs it was fitted on (score, same).
    Where no individual has two fit photos, there is no pair of one individual to fit on: a
    prior (`calibration.prior_calibration`), with a warning."""
    individuals, scores, present = leave_one_out_scores(embeddings, ids, aggregate=aggregate, top_k=top_k)
    same = np.asarray(ids, dtype=str)[:, None] == individuals[None, :]
    pairs = pd.DataFrame({"score": scores[present], "same": same[present]})
    if not pairs["same"].any():
        log.warning("embedding calibration NOT FITTED: no individual has two fit photos, as in a catalogue of one "
                    "photo per individual; its scores are made probabilities by a prior, not on data")
        return prior_calibration(pairs["score"]), pairs
    return fit_calibration(pairs["score"], pairs["same"], method), pairs


@dataclass(frozen=True)
class SearchScores:
    """Every individual's probabilities for a search's queries by both methods: ``individuals``
    (the embedding's catalogue's, sorted), ``local`` (`local_probability_matrix`) and
    ``embedding`` (calibrated similarities), each (queries, individuals)."""

    individuals: np.ndarray
    local: np.ndarray
    embedding: np.ndarray

    def fused(self, weight: float) -> Candidates:
        return fuse(self.local, self.embedding, self.individuals, weight)

    def candidates(self, images: Sequence[str], weight: float) -> pd.DataFrame:
        """Each query's four best individuals at `weight`, best first, with their fused
        probability and each input's (image, rank: 0 the best, id, probability, local,
        embedding), as the local method's shortlists list them: what the report's reliability
        diagram and candidate gallery read."""
        best = self.fused(weight)
        column_of = {individual: j for j, individual in enumerate(self.individuals.tolist())}
        rows = []
        for q, (image, ids) in enumerate(zip(images, best.ids)):
            for rank, individual in enumerate(ids):
                j = column_of[individual]
                rows.append((image, rank, individual, float(best.top[q, rank]), float(self.local[q, j]),
                             float(self.embedding[q, j])))
        return pd.DataFrame(rows, columns=["image", "rank", "id", "probability", "local", "embedding"])


def fuse(local: np.ndarray, embedding: np.ndarray, individuals: Sequence[str], weight: float) -> Candidates:
    """The four best individuals per query by fused probability, `weight` * `local` + (1 -
    `weight`) * `embedding`, both (queries, individuals) in the order of `individuals`. ``own``
    is -inf: no individual stands for new_whale."""
    if not 0 <= weight <= 1:
        raise ValueError(f"the fusion weight must be in [0, 1], got {weight}")
    if local.shape != embedding.shape or local.shape[1] != len(individuals):
        raise ValueError(f"local probabilities {local.shape} and embedding probabilities {embedding.shape} must "
                         f"both be (queries, {len(individuals)} individuals)")
    fused = weight * local + (1 - weight) * embedding
    if weight == 1:
        fused = fused + TIE_BREAK * embedding
    return candidates_from_scores(fused, individuals)


@dataclass(frozen=True)
class FusedIdentification(Identification):
    """The fused method's answers, with the ``weights`` tried (weight, map5, threshold, chosen),
    the ``weight`` chosen, each input's calibration checked on validation (``calibration``:
    `calibration_check`), and each search's ``candidates`` at that weight
    (`SearchScores.candidates`, by split)."""

    weights: pd.DataFrame
    weight: float
    calibration: pd.DataFrame
    candidates: dict[str, pd.DataFrame]


def choose_weight(queries: Queries, validation: SearchScores, test: SearchScores, weights: Sequence[float],
                  phash_distances: Sequence[int], thresholds: Sequence[float], logger=None
                  ) -> tuple[Identification, pd.DataFrame, float]:
    """The weight, duplicate distance and new_whale threshold with the best validation MAP@5
    together (among equal weights the `middle_of_best`, in the order given), the last two
    chosen for each weight as every method chooses them (`answers.choose_on_validation`);
    then both searches answered with them. `validation` and `test` score the queries of the
    `queries`' two searches. Returns the answers, the weights tried and the weight chosen."""
    if not len(weights):
        raise ValueError("no fusion weights to try")
    validation_search, test_search = queries.searches()
    for search, scores in ((validation_search, validation), (test_search, test)):
        if not len(scores.local) == len(scores.embedding) == len(search.queries):
            raise ValueError(f"{search.split} scores of {len(scores.local)} and {len(scores.embedding)} queries "
                             f"for {len(search.queries)} {search.split} photos")
    tried = []
    for weight in weights:
        # Test answers are made for the chosen weight only (below): here the validation sweep.
        choice = choose_on_validation(validation_search, validation.fused(weight), phash_distances, thresholds)
        tried.append((float(weight), choice.map5, choice.threshold))
    table = pd.DataFrame(tried, columns=["weight", "map5", "threshold"])
    best = middle_of_best(table["map5"].to_numpy())
    table["chosen"] = table.index == best
    weight = float(table.loc[best, "weight"])
    answers = answer(queries, validation.fused(weight), test.fused(weight), phash_distances, thresholds)
    if logger is not None:
        logger.info("fusion weight %g (of %s), new_whale threshold %g: validation MAP@5 %.4f", weight,
                    ", ".join(f"{w:g}" for w in weights), answers.chosen, table.loc[best, "map5"])
    return answers, table, weight


def middle_of_best(scores: Sequence[float]) -> int:
    """The position of the best score; where several share it, the middle of the longest run of
    them (the first run of equals, the lower middle of an even run).

    A small validation split often scores a whole range of weights perfectly: the middle of
    that plateau is the choice furthest from where the score drops, the first is at its edge."""
    scores = np.asarray(scores, dtype=float)
    if not len(scores):
        raise ValueError("no scores to choose from")
    top = scores == scores.max()
    runs, start = [], None
    for i, is_top in enumerate([*top.tolist(), False]):
        if is_top and start is None:
            start = i
        elif not is_top and start is not None:
            runs.append((start, i))
            start = None
    first, stop = max(runs, key=lambda run: run[1] - run[0])
    return first + (stop - first - 1) // 2


def calibration_check(search: Search, scores: SearchScores) -> pd.DataFrame:
    """How well each input's probabilities hold on a search whose truth is known (validation),
    where it matters: each query's first-ranked individual, its probability against whether it
    is the query's (method, queries, ece: the expected calibration error, `reliability`'s bins).
    Over every (query, individual) pair the error would be tiny whatever the calibration: nearly
    all of them are near-zero probabilities of wrong individuals."""
    truth = search.queries["truth"].to_numpy(str)
    rows = []
    for name, matrix in (("local", scores.local), ("metric_learning", scores.embedding)):
        first = matrix.argmax(axis=1)
        probability = matrix[np.arange(len(matrix)), first]
        rows.append((name, len(matrix), expected_calibration_error(probability, scores.individuals[first] == truth)))
    return pd.DataFrame(rows, columns=["method", "queries", "ece"])


def identify(validation_shortlists_csv: str | Path, test_shortlists_csv: str | Path, verifier_path: str | Path,
             train_npy: str | Path, train_index: str | Path, test_npy: str | Path, test_index: str | Path,
             split_csv: str | Path, manifest_csv: str | Path, *, weights: Sequence[float], calibration: str,
             phash_distances: Sequence[int], thresholds: Sequence[float], aggregate: str, top_k: int,
             reviewed: str | Path | None = None, encounters: str | Path | None = None) -> FusedIdentification:
    """The fused method on both searches, from the local method's shortlists and verifier (its
    model file, for the probability of an individual not shortlisted) and the embeddings of
    train and test (each .npy with its index .csv): see `choose_weight`. Both methods score
    each search's queries against the same catalogue; the embedding's calibration (of kind
    `calibration`) is fitted on the fit photos alone. `reviewed`: the test photos a person
    identified, in both methods' test catalogue, and `encounters` (`Queries.read`)."""
    from whaleid.methods.local.verifier import Verifier

    queries = Queries.read(train_index, test_index, split_csv, manifest_csv, reviewed, encounters)
    train_embeddings, _ = read_embeddings(train_npy, train_index)
    test_embeddings, _ = read_embeddings(test_npy, test_index)
    queries.check_rows(len(train_embeddings), len(test_embeddings), train_npy, test_npy)
    absent = Verifier.load(verifier_path).absent
    fit = queries.fit_rows
    embedding, pairs = embedding_calibration(train_embeddings[fit], queries.train["id"].to_numpy()[fit],
                                             aggregate=aggregate, top_k=top_k, method=calibration)
    log.info("embedding calibration (%s) from %d fit pairs, %d of one individual", embedding.method, len(pairs),
             int(pairs["same"].sum()))
    shortlists = {"validation": validation_shortlists_csv, "test": test_shortlists_csv}

    def scores(search: Search) -> SearchScores:
        individuals, similarities = individual_scores(
            search.query_values(train_embeddings, test_embeddings),
            search.catalogue_values(train_embeddings, test_embeddings),
            search.catalogue_ids, aggregate=aggregate, top_k=top_k)
        local = local_probability_matrix(_read_shortlists(shortlists[search.split]), search.queries["image"].tolist(),
                                         individuals, absent)
        return SearchScores(individuals, local, embedding(similarities))

    validation, test = queries.searches()
    validation_scores, test_scores = scores(validation), scores(test)
    answers, table, weight = choose_weight(queries, validation_scores, test_scores, weights, phash_distances,
                                           thresholds, log)
    checked = calibration_check(validation, validation_scores)
    log.info("expected calibration error on validation:\n%s", checked.to_string(index=False))
    candidates = {search.split: search_scores.candidates(search.queries["image"].tolist(), weight)
                  for search, search_scores in ((validation, validation_scores), (test, test_scores))}
    return FusedIdentification(answers.validation, answers.test, answers.curve, answers.chosen, table, weight, checked,
                               candidates)


def _read_shortlists(path: str | Path) -> pd.DataFrame:
    return read_table(path).astype({"probability": float})
