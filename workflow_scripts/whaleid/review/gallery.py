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
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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
from whaleid.review.pictures import THUMBNAIL_SIDE, match_image, png_uri, thumbnail_uri
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE

log = logging.getLogger(__name__)
# The rank given to a truth that is not among the five answers.
NOT_ANSWERED = N_ANSWERS + 1
PAGES = {
    "best_hits": ("Best hits", "Queries answered right at rank 1, the most confident first."),
    "worst_misses": ("Worst misses", "Queries whose rank 1 is wrong: those whose truth is not among the five "
                                     "answers first, then those with the truth ranked lowest; the most "
                                     "confident wrong rank 1 first among equals."),
}
# What each kind of score is called on a page, and how it is written.
SCORES = {"similarity": "{:.3f}", "probability": "{:.3f}", "inliers": "{:.0f}", "score": "{:.3g}"}


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


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None, kind: str = "similarity") -> str:
    if value is None or not np.isfinite(value):
        return ""
    # a calibrated probability of 0.99995 is not a certainty, nor 2e-6 an impossibility
    if kind == "probability" and not 0.001 <= value <= 0.999:
        return "&lt; 0.001" if value < 0.001 else "&gt; 0.999"
    return SCORES[kind].format(value)


def _raw(value: float | None) -> str:
    """A number as a page's data attributes hold it, for scripts and tests."""
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def _thumbnail(photos: Photos, row: int, side: int, cache: dict) -> str:
    key = (id(photos), row)
    if key not in cache:
        cache[key] = thumbnail_uri(photos.squares[row], side)
    return cache[key]


STYLE = """
body { font-family: sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 6px; }
p.intro { max-width: 1100px; margin: 0 0 14px; font-size: 13px; line-height: 1.4; }
section.query { border-top: 1px solid #ccc; padding: 8px 0 10px; }
section.query h2 { font-size: 13px; font-weight: normal; margin: 0 0 6px; }
section.query h2 b { font-family: monospace; font-size: 13px; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; width: 136px; font-size: 12px; text-align: center; }
figure.matched { width: 270px; }
figure img, figure .placeholder { display: block; width: 128px; height: 128px; object-fit: contain;
  border: 4px solid transparent; background: #eee; }
figure.matched img { width: 262px; }
figure .placeholder { display: flex; flex-direction: column; justify-content: center; align-items: center;
  box-sizing: content-box; border-style: dashed; border-color: #999; color: #555; font-size: 12px; }
figure.query img { border-color: #2b6cb0; }
figure.candidate[data-correct="true"] img, figure.candidate[data-correct="true"] .placeholder {
  border: 4px solid #2f9e44; }
figure.truth img { border-color: #e8590c; border-style: dotted; }
figcaption { margin-top: 3px; overflow-wrap: anywhere; }
figcaption .id { font-family: monospace; }
.mark { color: #2f9e44; font-weight: bold; }
.separator { width: 2px; align-self: stretch; background: #ccc; }
"""


@dataclass(frozen=True)
class _Page:
    """What every section of one page shares."""

    queries: dict[str, Photos]
    catalogues: dict[str, Photos]
    threshold: float
    score_name: str
    matches: Matches | None
    unverified: str
    side: int
    cache: dict


def _photo_figure(page: _Page, split: str, query: int, photo: int, individual: str, verified: bool | None,
                  attributes: str) -> tuple[str, str, str]:
    """The picture of a catalogue photo (beside the query with its inlier matches, where they
    can be drawn), the figure's attributes and a caption line on the matches."""
    catalogue = page.catalogues[split]
    name = catalogue.names[photo]
    attributes += f' data-photo="{_e(name)}"'
    alt = f"{_e(individual)}, catalogue photo {_e(name)}"
    if verified and page.matches is not None:
        lines = page.matches(split, query, photo)
        image = match_image(page.queries[split].squares[query], catalogue.squares[photo], lines, page.side)
        attributes = attributes.replace('class="', 'class="matched ', 1) + f' data-inliers="{len(lines)}"'
        picture = f'<img src="{png_uri(image)}" alt="query beside {alt}, {len(lines)} inlier matches" title="{_e(name)}">'
        return picture, attributes, f"<br>{len(lines)} inlier matches"
    picture = f'<img src="{_thumbnail(catalogue, photo, page.side, page.cache)}" alt="{alt}" title="{_e(name)}">'
    note = f"<br>{_e(page.unverified)}" if verified is False else ""
    return picture, attributes, note


def _candidate(page: _Page, split: str, query: int, rank: int, individual: str, photo: int, score: float,
               verified: bool | None, truth: str) -> str:
    correct = individual == truth
    attributes = (f'class="candidate" data-id="{_e(individual)}" data-rank="{rank}" '
                  f'data-score="{_raw(score)}" data-correct="{"true" if correct else "false"}"')
    mark = ' <span class="mark">&#10003; truth</span>' if correct else ""
    score_line = f"<br>{page.score_name} {_number(score, page.score_name)}" if np.isfinite(score) else ""
    if photo >= 0:
        picture, attributes, note = _photo_figure(page, split, query, photo, individual, verified, attributes)
        caption = f'{rank}. <span class="id">{_e(individual)}</span>{mark}{score_line}{note}'
    elif individual == NEW_WHALE:
        attributes += f' data-threshold="{_raw(page.threshold)}"'
        picture = ('<div class="placeholder" role="img" aria-label="new_whale">new_whale<br>'
                   '<small>a new individual</small></div>')
        caption = (f'{rank}. <span class="id">new_whale</span>{mark}<br>threshold '
                   f'{_number(page.threshold, page.score_name)}')
    else:
        picture = '<div class="placeholder" role="img" aria-label="no catalogue photo">no catalogue photo</div>'
        caption = f'{rank}. <span class="id">{_e(individual)}</span>{mark}{score_line}'
    return f'<figure {attributes}>{picture}<figcaption>{caption}</figcaption></figure>'


def _query_section(row, page: _Page) -> str:
    split, truth = row.split, row.truth
    if row.truth_rank == 1:
        status = "right at rank 1"
    elif row.truth_rank == NOT_ANSWERED:
        status = "truth not among the five answers"
    else:
        status = f"truth at rank {row.truth_rank}"
    heading = (f'<h2><b>{_e(row.image)}</b> ({_e(split)}) &middot; truth <b>{_e(truth)}</b> &middot; '
               f'{_e(status)} &middot; confidence {_number(row.confidence, page.score_name)}</h2>')
    figures = [f'<figure class="query"><img src="{_thumbnail(page.queries[split], row.query, page.side, page.cache)}" '
               f'alt="query {_e(row.image)}" title="{_e(row.image)}"><figcaption>query<br>'
               f'<span class="id">{_e(row.image)}</span></figcaption></figure>', '<div class="separator"></div>']
    for rank, (individual, photo, score, verified) in enumerate(zip(row.answers, row.photo, row.score, row.verified),
                                                                start=1):
        figures.append(_candidate(page, split, row.query, rank, individual, photo, score, verified, truth))
    if row.truth_rank == NOT_ANSWERED and row.truth_photo >= 0:
        attributes = (f'class="truth" data-id="{_e(truth)}" '
                      f'data-score="{_raw(row.truth_score)}"')
        picture, attributes, note = _photo_figure(page, split, row.query, row.truth_photo, truth, row.truth_verified,
                                                  attributes)
        score_line = (f"<br>{page.score_name} {_number(row.truth_score, page.score_name)}"
                      if np.isfinite(row.truth_score) else "")
        figures += ['<div class="separator"></div>',
                    f'<figure {attributes}>{picture}<figcaption>truth, not answered: <span class="id">{_e(truth)}'
                    f'</span>{score_line}{note}</figcaption></figure>']
    return (f'<section class="query" data-image="{_e(row.image)}" data-truth="{_e(truth)}" data-split="{_e(split)}" '
            f'data-truth-rank="{row.truth_rank}">{heading}<div class="row">{"".join(figures)}</div></section>')


def render_page(page: str, selected: pd.DataFrame, queries: dict[str, Photos], catalogues: dict[str, Photos],
                threshold: float, *, method: str = "metric_learning", score_name: str = "similarity",
                matches: Matches | None = None, unverified: str = "not verified",
                counts: dict[str, int] | None = None, side: int = THUMBNAIL_SIDE) -> str:
    """The HTML of one gallery page (`page`: a key of PAGES) showing the `selected` rows of
    `query_table`s, whose ``query`` and ``photo`` are rows of `queries[split]` and
    `catalogues[split]`; scores are a `score_name` (a key of SCORES). Where `matches` is given,
    each verified photo is drawn beside the query with the lines it returns, and a photo not
    verified is captioned `unverified`. `counts`: queries looked at per split, for the
    introduction."""
    if score_name not in SCORES:
        raise ValueError(f"unknown score {score_name!r}: expected one of {', '.join(SCORES)}")
    title, what = PAGES[page]
    looked_at = ", ".join(f"{n} {split}" for split, n in (counts or {}).items())
    shown_by = {"similarity": "the catalogue photo of that individual most similar to the query, with its cosine "
                              "similarity",
                "probability": "the catalogue photo that speaks for it (a verified photo beside the query, its "
                               "inlier matches drawn as lines), with the calibrated probability that it is the "
                               "query's individual",
                "inliers": "its verified catalogue photo with most inliers, beside the query with its inlier "
                           "matches drawn as lines, and that inlier count"}[score_name]
    intro = (f"{what} Each query photo (blue border) is followed by the method's five answers, best first, each "
             f"shown by {shown_by}; the answer equal to the query's truth has a green border and is marked "
             f"&#10003;. new_whale is answered where the {score_name} falls below the threshold chosen on "
             f"validation ({_number(threshold, score_name)}). Confidence: how far rank 1 lies past that threshold. "
             "Validation queries are answered from the fit photos of train, test queries from all of train."
             + (f" Queries looked at: {_e(looked_at)}." if looked_at else ""))
    shared = _Page(queries, catalogues, threshold, score_name, matches, unverified, side, {})
    sections = [_query_section(row, shared) for row in selected.itertuples()]
    if not sections:
        sections = ['<p class="empty">No query to show here.</p>']
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(method)}: {_e(title.lower())}</title>\n<style>{STYLE}</style>\n</head>\n"
            f'<body data-page="{_e(page)}" data-method="{_e(method)}" data-score="{_e(score_name)}" '
            f'data-threshold="{_raw(threshold)}">\n'
            f"<h1>{_e(method)}: {_e(title.lower())} ({len(selected)})</h1>\n<p class=\"intro\">{intro}</p>\n"
            + "\n".join(sections) + "\n</body>\n</html>\n")


def write_galleries(*, method: str, split_csv: str | Path, validation_predictions: str | Path,
                    test_predictions: str | Path, threshold_curve: str | Path, train_images: str | Path,
                    train_images_index: str | Path, test_images: str | Path, test_images_index: str | Path,
                    best_hits_out: str | Path, worst_misses_out: str | Path, size: int,
                    test_truth: str | Path | None = None, embeddings: EmbeddingFiles | None = None,
                    keypoints: KeypointFiles | None = None, pairs: dict[str, str | Path] | None = None,
                    scores: dict[str, str | Path] | None = None, reviewed: str | Path | None = None
                    ) -> dict[str, int]:
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
    shown = method_evidence(method, found, embeddings=embeddings, keypoints=keypoints, pairs=pairs, scores=scores)
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
