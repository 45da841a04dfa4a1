"""The candidate gallery: query photos beside a method's five ranked answers, for people to look at.

People who identify whales look before they trust a number. Each page shows some queries (a
validation photo, or a test photo where the test truth is known) beside the five answers a
method gave, each answer shown by the catalogue photo that speaks for it (`evidence`), with the
method's score; `new_whale` is a labelled placeholder, and the answer equal to the query's truth
has a green border.

Two pages are made: the best hits (truth at rank 1, most confident first) and the worst misses
(truth not among the five, then the truth lowest, each most confident first). Confidence is
how far rank 1 lies past the new_whale threshold, in the method's score: a known individual's
score minus the threshold, or for a new_whale answer the threshold minus the best score of any
known individual.

Each page is one self-contained HTML file: inline CSS, thumbnails as PNG data URIs, no script.
Its markup is the template `templates/gallery.html.j2` (`html.render`): here are the values it
shows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from whaleid.io.files import write_text
from whaleid.review.evidence import (
    EmbeddingFiles,
    Evidence,
    KeypointFiles,
    Matches,
    Photos,
    chosen_threshold,
    confidence,
    gallery_queries,
    method_evidence,
)
from whaleid.review.html import render
from whaleid.review.pictures import THUMBNAIL_SIDE, match_image, png_uri, thumbnail_uri
from whaleid.vocabulary import N_ANSWERS

log = logging.getLogger(__name__)
# The rank given to a truth that is not among the five answers.
NOT_ANSWERED = N_ANSWERS + 1
PAGES = {
    "best_hits": ("Best hits", "Queries answered right at rank 1, the most confident first."),
    "worst_misses": ("Worst misses", "Queries whose rank 1 is wrong: those whose truth is not among the five "
                                     "answers first, then those with the truth ranked lowest; the most "
                                     "confident wrong rank 1 first among equals."),
}
# The scores of the methods a gallery is made for (`evidence.method_evidence`): its introduction
# says how each shows the answers.
GALLERY_SCORES = ("similarity", "probability", "inliers")


def truth_rank(answers: Sequence[str], truth: str) -> int:
    """The rank (1 to 5) of `truth` among `answers`, or NOT_ANSWERED."""
    return list(answers).index(truth) + 1 if truth in answers else NOT_ANSWERED


def query_table(queries: Photos, split: str, truths: Sequence[str], answers: Sequence[Sequence[str]],
                evidence: Evidence, threshold: float) -> pd.DataFrame:
    """One row per query: image, split, truth, answers, photo and score (per answer, from
    `evidence` of the answers `with_truths`; photo: rows of the catalogue), verified (per
    answer: True, False, or None where the method verifies nothing), truth_rank, confidence,
    and the truth's own photo, score and verified (truth_photo -1 where it has none)."""
    if not len(queries.names) == len(truths) == len(answers) == len(evidence.photo):
        raise ValueError(f"{len(queries.names)} queries, {len(truths)} truths, {len(answers)} answer lists and "
                         f"evidence for {len(evidence.photo)}")
    rows = []
    for i, (image, truth, row) in enumerate(zip(queries.names, truths, answers)):
        n = len(row)
        verified = (evidence.verified[i, :n + 1].tolist() if evidence.verified is not None else [None] * (n + 1))
        rows.append({
            "image": image, "split": split, "truth": truth, "answers": list(row), "query": i,
            "photo": evidence.photo[i, :n].tolist(), "score": evidence.score[i, :n].tolist(), "verified": verified[:n],
            "truth_rank": truth_rank(row, truth),
            "confidence": (confidence(row[0], float(evidence.score[i, 0]), float(evidence.best_known[i]), threshold)
                           if row else np.nan),
            "truth_photo": int(evidence.photo[i, n]), "truth_score": float(evidence.score[i, n]),
            "truth_verified": verified[n],
        })
    columns = ["image", "split", "truth", "answers", "query", "photo", "score", "verified", "truth_rank",
               "confidence", "truth_photo", "truth_score", "truth_verified"]
    return pd.DataFrame(rows, columns=columns)


def best_hits(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The `n` rows of a `query_table` with the truth at rank 1, the most confident first (then
    by split and image name)."""
    hits = table[table["truth_rank"] == 1]
    return hits.sort_values(["confidence", "split", "image"], ascending=[False, True, True],
                            na_position="last", kind="stable").head(n)


def worst_misses(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The `n` rows of a `query_table` whose rank 1 is wrong: the truth not among the answers
    first, then ranked lowest; among equals the most confident wrong rank 1 first."""
    misses = table[table["truth_rank"] > 1]
    return misses.sort_values(["truth_rank", "confidence", "split", "image"], ascending=[False, False, True, True],
                              na_position="last", kind="stable").head(n)


def _thumbnail(photos: Photos, row: int, side: int, cache: dict) -> str:
    key = (id(photos), row)
    if key not in cache:
        cache[key] = thumbnail_uri(photos.squares[row], side)
    return cache[key]


@dataclass(frozen=True)
class _Page:
    """What every section of one page shares."""

    queries: dict[str, Photos]
    catalogues: dict[str, Photos]
    matches: Matches | None
    side: int
    cache: dict


@dataclass(frozen=True)
class _Photo:
    """A catalogue photo as a figure shows it: its ``name``, its picture (``src``: a data URI),
    and either the ``inliers`` drawn between it and the query beside it (None: the photo alone)
    or whether it was ``unverified`` (a method that verifies photos found no keypoint match)."""

    name: str
    src: str
    inliers: int | None = None
    unverified: bool = False


@dataclass(frozen=True)
class _Answer:
    """An individual as a figure shows it: its ``id``, ``score`` (NaN: none) and the catalogue
    ``photo`` that speaks for it (None: a placeholder); for one of the answers, its ``rank`` and
    whether it is ``correct`` (the query's truth)."""

    id: str
    score: float
    photo: _Photo | None
    rank: int | None = None
    correct: bool = False


@dataclass(frozen=True)
class _Section:
    """A query as its section shows it: a row of a `query_table`, what its rank 1 came to
    (``status``), its photo (``src``), its ``answers``, and its truth where it is not among them
    and has a photo (``truth_figure``, None otherwise)."""

    image: str
    split: str
    truth: str
    truth_rank: int
    status: str
    confidence: float
    src: str
    answers: list[_Answer]
    truth_figure: _Answer | None


def _photo(page: _Page, split: str, query: int, photo: int, verified: bool | None) -> _Photo:
    """A catalogue photo, beside the query with its inlier matches where they can be drawn."""
    catalogue = page.catalogues[split]
    name = catalogue.names[photo]
    if verified and page.matches is not None:
        lines = page.matches(split, query, photo)
        image = match_image(page.queries[split].squares[query], catalogue.squares[photo], lines, page.side)
        return _Photo(name, png_uri(image), inliers=len(lines))
    return _Photo(name, _thumbnail(catalogue, photo, page.side, page.cache), unverified=verified is False)


def _section(row, page: _Page) -> _Section:
    split, truth = row.split, row.truth
    if row.truth_rank == 1:
        status = "right at rank 1"
    elif row.truth_rank == NOT_ANSWERED:
        status = "truth not among the five answers"
    else:
        status = f"truth at rank {row.truth_rank}"
    answers = [_Answer(individual, score, _photo(page, split, row.query, photo, verified) if photo >= 0 else None,
                       rank, individual == truth)
               for rank, (individual, photo, score, verified) in enumerate(zip(row.answers, row.photo, row.score,
                                                                                row.verified), start=1)]
    truth_figure = None
    if row.truth_rank == NOT_ANSWERED and row.truth_photo >= 0:
        truth_figure = _Answer(truth, row.truth_score,
                               _photo(page, split, row.query, row.truth_photo, row.truth_verified))
    return _Section(row.image, split, truth, row.truth_rank, status, row.confidence,
                    _thumbnail(page.queries[split], row.query, page.side, page.cache), answers, truth_figure)


def render_page(page: str, selected: pd.DataFrame, queries: dict[str, Photos], catalogues: dict[str, Photos],
                threshold: float, *, method: str = "metric_learning", score_name: str = "similarity",
                matches: Matches | None = None, unverified: str = "not verified",
                counts: dict[str, int] | None = None, side: int = THUMBNAIL_SIDE) -> str:
    """The HTML of one gallery page (`page`: a key of PAGES) showing the `selected` rows of
    `query_table`s, whose ``query`` and ``photo`` are rows of `queries[split]` and
    `catalogues[split]`; scores are a `score_name` (one of GALLERY_SCORES). Where `matches` is
    given, each verified photo is drawn beside the query with the lines it returns, and a photo
    not verified is captioned `unverified`. `counts`: queries looked at per split, for the
    introduction."""
    if score_name not in GALLERY_SCORES:
        raise ValueError(f"unknown score {score_name!r}: expected one of {', '.join(GALLERY_SCORES)}")
    title, what = PAGES[page]
    shared = _Page(queries, catalogues, matches, side, {})
    return render("gallery.html.j2", page=page, method=method, title=title, what=what, score_name=score_name,
                  threshold=threshold, unverified=unverified,
                  looked_at=", ".join(f"{n} {split}" for split, n in (counts or {}).items()),
                  sections=[_section(row, shared) for row in selected.itertuples()])


def write_galleries(*, method: str, split_csv: str | Path, validation_predictions: str | Path,
                    test_predictions: str | Path, threshold_curve: str | Path, train_images: str | Path,
                    train_images_index: str | Path, test_images: str | Path, test_images_index: str | Path,
                    best_hits_out: str | Path, worst_misses_out: str | Path, size: int,
                    test_truth: str | Path | None = None, embeddings: EmbeddingFiles | None = None,
                    keypoints: KeypointFiles | None = None, pairs: dict[str, str | Path] | None = None,
                    scores: dict[str, str | Path] | None = None, pseudo_labels: str | Path | None = None,
                    reviewed: str | Path | None = None) -> dict[str, int]:
    """Write `method`'s best-hits and worst-misses pages of `size` queries each (see the module).

    Validation queries are shown against the fit photos of train, test queries (where
    `test_truth` is given) against all of train and the `reviewed` photos: as they were
    answered (`gallery_queries`). What the pages show of each answer: `method_evidence`.
    Returns the number of queries looked at per split."""
    if size < 1:
        raise ValueError(f"gallery size must be 1 or more, got {size}")
    threshold = chosen_threshold(threshold_curve)
    found = gallery_queries(split_csv=split_csv, train_images=train_images, train_images_index=train_images_index,
                            test_images=test_images, test_images_index=test_images_index,
                            validation_predictions=validation_predictions, test_predictions=test_predictions,
                            test_truth=test_truth, reviewed=reviewed)
    shown = method_evidence(method, found, embeddings=embeddings, keypoints=keypoints, pairs=pairs, scores=scores,
                            pseudo_labels=pseudo_labels)
    table = pd.concat([query_table(queries, split, queries.ids, found.answers[split], shown.evidence[split], threshold)
                       for split, queries in found.queries.items()], ignore_index=True)
    counts = {split: int((table["split"] == split).sum()) for split in found.queries}
    for page, selected, out in (("best_hits", best_hits(table, size), best_hits_out),
                                ("worst_misses", worst_misses(table, size), worst_misses_out)):
        write_text(render_page(page, selected, found.queries, shown.catalogues, threshold, method=method,
                               score_name=shown.score_name, matches=shown.matches, unverified=shown.unverified,
                               counts=counts), out)
        log.info("%s: %d queries shown in %s", page, len(selected), out)
    log.info("queries looked at: %s; new_whale threshold %g", counts, threshold)
    return counts
