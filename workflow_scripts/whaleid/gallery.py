"""The candidate gallery: query photos beside their five ranked answers, for people to look at.

People who identify whales look before they trust a number. Each page shows some queries (a
validation photo, or a test photo where the test truth is known) beside the five answers the
metric-learning method gave, each answer shown by the catalogue photo of that individual most
similar to the query, with that photo's cosine similarity; `new_whale` is a labelled
placeholder, and the answer equal to the query's truth has a green border.

Two pages are made: the best hits (truth at rank 1, most confident first) and the worst misses
(truth not among the five, then the truth lowest, each most confident first). Confidence is
how far rank 1 lies past the new_whale threshold, in cosine similarity: a known individual's
similarity minus the threshold, or for a new_whale answer the threshold minus the best
similarity of any known individual.

Each page is one self-contained HTML file: inline CSS, thumbnails as PNG data URIs, no script.
numpy, pandas and OpenCV only: no TensorFlow.
"""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd

from .files import write_text
from .identification import Individuals, Queries
from .ingest import NEW_WHALE
from .metric_learning.retrieval import DEFAULT_BLOCK_SIZE, extend_catalogue, normalise, read_embeddings
from .submission import N_ANSWERS, read_predictions
from .tables import read_table, train_table

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 128
# The rank given to a truth that is not among the five answers.
NOT_ANSWERED = N_ANSWERS + 1
PAGES = {
    "best_hits": ("Best hits", "Queries answered right at rank 1, the most confident first."),
    "worst_misses": ("Worst misses", "Queries whose rank 1 is wrong: those whose truth is not among the five "
                                     "answers first, then those with the truth ranked lowest; the most "
                                     "confident wrong rank 1 first among equals."),
}


@dataclass(frozen=True)
class Photos:
    """Photos of one or more splits: ``names``, ``ids`` (the individual, or new_whale),
    normalised ``embeddings`` (N, D) and ``squares``, each photo's preprocessed square (a
    memory-mapped view, read only when its thumbnail is made)."""

    names: list[str]
    ids: list[str]
    embeddings: np.ndarray
    squares: list[np.ndarray]

    def __post_init__(self):
        if not len(self.names) == len(self.ids) == len(self.embeddings) == len(self.squares):
            raise ValueError(f"{len(self.names)} names, {len(self.ids)} ids, {len(self.embeddings)} embeddings and "
                             f"{len(self.squares)} squares: expected one of each per photo")

    def subset(self, rows: np.ndarray) -> "Photos":
        rows = np.asarray(rows, dtype=np.int64)
        return Photos([self.names[r] for r in rows], [self.ids[r] for r in rows], self.embeddings[rows],
                      [self.squares[r] for r in rows])


def match_answers(queries: np.ndarray, answers: Sequence[Sequence[str]], catalogue: np.ndarray,
                  catalogue_ids: Sequence[str], *, block_size: int = DEFAULT_BLOCK_SIZE
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query embedding and each of its `answers` (ids, best first), the catalogue
    photo of that individual most similar to the query and its cosine similarity; and each
    query's best similarity to any photo of a known individual.

    Returns `photo` (Q, A) int64 catalogue rows (-1 for new_whale and for ids without a
    catalogue photo), `score` (Q, A) float32 (NaN where `photo` is -1) and `best_known` (Q,)
    float32 (NaN where the catalogue has no known photo). Photos of new_whale never stand for
    anyone. Queries are compared `block_size` at a time, which bounds the memory used.
    """
    queries, catalogue = normalise(queries), normalise(catalogue)
    if catalogue.shape[1] != queries.shape[1]:
        raise ValueError(f"query embeddings of dimension {queries.shape[1]} but catalogue embeddings of dimension "
                         f"{catalogue.shape[1]}: they must come from the same model")
    ids = np.asarray(catalogue_ids, dtype=str)
    if ids.ndim != 1 or len(ids) != len(catalogue):
        raise ValueError(f"{len(ids)} catalogue ids for {len(catalogue)} catalogue embeddings")
    if len(answers) != len(queries):
        raise ValueError(f"{len(answers)} answer lists for {len(queries)} query embeddings")
    width = max((len(row) for row in answers), default=0)
    grouped = Individuals.of(ids, enough_for_answers=False)
    known = grouped.photos
    photos_of = {individual: known[members] for individual, members in zip(grouped.ids.tolist(), grouped.members())}

    photo = np.full((len(queries), width), -1, np.int64)
    score = np.full((len(queries), width), np.nan, np.float32)
    best_known = np.full(len(queries), np.nan, np.float32)
    for begin in range(0, len(queries), block_size):
        similarities = queries[begin:begin + block_size] @ catalogue.T
        if len(known):
            best_known[begin:begin + len(similarities)] = similarities[:, known].max(axis=1)
        for offset, row in enumerate(similarities):
            for rank, individual in enumerate(answers[begin + offset]):
                columns = photos_of.get(individual)
                if columns is None:
                    continue
                best = columns[int(np.argmax(row[columns]))]
                photo[begin + offset, rank], score[begin + offset, rank] = best, row[best]
    return photo, score, best_known


def truth_rank(answers: Sequence[str], truth: str) -> int:
    """The rank (1 to 5) of `truth` among `answers`, or NOT_ANSWERED."""
    return list(answers).index(truth) + 1 if truth in answers else NOT_ANSWERED


def confidence(first_answer: str, first_score: float, best_known: float, threshold: float) -> float:
    """How far the rank-1 answer lies past the new_whale threshold: its similarity minus the
    threshold, or for new_whale the threshold minus the best similarity of a known individual.
    NaN where the similarity is unknown."""
    return float(threshold - best_known) if first_answer == NEW_WHALE else float(first_score - threshold)


def query_table(queries: Photos, split: str, truths: Sequence[str], answers: Sequence[Sequence[str]],
                catalogue: Photos, threshold: float) -> pd.DataFrame:
    """One row per query: image, split, truth, answers, photo and score (per answer, see
    `match_answers`; rows of `catalogue`), truth_rank, confidence, and the truth's own best
    catalogue photo and similarity (truth_photo, truth_score: -1 and NaN where it has none)."""
    if not len(queries.names) == len(truths) == len(answers):
        raise ValueError(f"{len(queries.names)} queries, {len(truths)} truths and {len(answers)} answer lists")
    # the truth's own photo too, after the answers: one comparison of each query with the catalogue
    photo, score, best_known = match_answers(queries.embeddings, [[*row, truth] for row, truth in zip(answers, truths)],
                                             catalogue.embeddings, catalogue.ids)
    rows = []
    for i, (image, truth, row) in enumerate(zip(queries.names, truths, answers)):
        rows.append({
            "image": image, "split": split, "truth": truth, "answers": list(row), "query": i,
            "photo": photo[i, :len(row)].tolist(), "score": score[i, :len(row)].tolist(),
            "truth_rank": truth_rank(row, truth),
            "confidence": confidence(row[0], float(score[i, 0]), float(best_known[i]), threshold) if row else np.nan,
            "truth_photo": int(photo[i, len(row)]), "truth_score": float(score[i, len(row)]),
        })
    columns = ["image", "split", "truth", "answers", "query", "photo", "score", "truth_rank", "confidence",
               "truth_photo", "truth_score"]
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


def thumbnail_uri(square: np.ndarray, side: int = THUMBNAIL_SIDE) -> str:
    """A PNG data URI of `square` (a 2-D uint8 image, or H x W x C), resized to at most `side`
    pixels on its longest side (never enlarged)."""
    image = np.asarray(square)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"a thumbnail needs a 2-D image (or H x W x C), got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    scale = side / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode a thumbnail of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _similarity(value: float) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.3f}"


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
figure img, figure .placeholder { display: block; width: 128px; height: 128px; object-fit: contain;
  border: 4px solid transparent; background: #eee; }
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


def _candidate(rank: int, individual: str, photo: int, score: float, truth: str, catalogue: Photos,
               threshold: float, side: int, cache: dict) -> str:
    correct = individual == truth
    attributes = (f'class="candidate" data-id="{_e(individual)}" data-rank="{rank}" '
                  f'data-score="{_similarity(score)}" data-correct="{"true" if correct else "false"}"')
    mark = ' <span class="mark">&#10003; truth</span>' if correct else ""
    if photo >= 0:
        attributes += f' data-photo="{_e(catalogue.names[photo])}"'
        picture = (f'<img src="{_thumbnail(catalogue, photo, side, cache)}" alt="{_e(individual)}, catalogue '
                   f'photo {_e(catalogue.names[photo])}" title="{_e(catalogue.names[photo])}">')
        caption = f'{rank}. <span class="id">{_e(individual)}</span>{mark}<br>similarity {_similarity(score)}'
    elif individual == NEW_WHALE:
        attributes += f' data-threshold="{_similarity(threshold)}"'
        picture = ('<div class="placeholder" role="img" aria-label="new_whale">new_whale<br>'
                   '<small>a new individual</small></div>')
        caption = f'{rank}. <span class="id">new_whale</span>{mark}<br>threshold {_similarity(threshold)}'
    else:
        picture = '<div class="placeholder" role="img" aria-label="no catalogue photo">no catalogue photo</div>'
        caption = f'{rank}. <span class="id">{_e(individual)}</span>{mark}'
    return f'<figure {attributes}>{picture}<figcaption>{caption}</figcaption></figure>'


def _query_section(row, queries: dict[str, Photos], catalogues: dict[str, Photos], threshold: float, side: int,
                   cache: dict) -> str:
    split, truth = row.split, row.truth
    query_photos, catalogue = queries[split], catalogues[split]
    if row.truth_rank == 1:
        status = "right at rank 1"
    elif row.truth_rank == NOT_ANSWERED:
        status = "truth not among the five answers"
    else:
        status = f"truth at rank {row.truth_rank}"
    heading = (f'<h2><b>{_e(row.image)}</b> ({_e(split)}) &middot; truth <b>{_e(truth)}</b> &middot; '
               f'{_e(status)} &middot; confidence {_similarity(row.confidence)}</h2>')
    figures = [f'<figure class="query"><img src="{_thumbnail(query_photos, row.query, side, cache)}" '
               f'alt="query {_e(row.image)}" title="{_e(row.image)}"><figcaption>query<br>'
               f'<span class="id">{_e(row.image)}</span></figcaption></figure>', '<div class="separator"></div>']
    for rank, (individual, photo, score) in enumerate(zip(row.answers, row.photo, row.score), start=1):
        figures.append(_candidate(rank, individual, photo, score, truth, catalogue, threshold, side, cache))
    if row.truth_rank == NOT_ANSWERED and row.truth_photo >= 0:
        photo = row.truth_photo
        figures += ['<div class="separator"></div>',
                    f'<figure class="truth" data-id="{_e(truth)}" data-score="{_similarity(row.truth_score)}" '
                    f'data-photo="{_e(catalogue.names[photo])}">'
                    f'<img src="{_thumbnail(catalogue, photo, side, cache)}" alt="{_e(truth)}, catalogue photo '
                    f'{_e(catalogue.names[photo])}" title="{_e(catalogue.names[photo])}"><figcaption>truth, '
                    f'not answered: <span class="id">{_e(truth)}</span><br>similarity '
                    f'{_similarity(row.truth_score)}</figcaption></figure>']
    return (f'<section class="query" data-image="{_e(row.image)}" data-truth="{_e(truth)}" data-split="{_e(split)}" '
            f'data-truth-rank="{row.truth_rank}">{heading}<div class="row">{"".join(figures)}</div></section>')


def render_page(page: str, selected: pd.DataFrame, queries: dict[str, Photos], catalogues: dict[str, Photos],
                threshold: float, *, method: str = "metric_learning", counts: dict[str, int] | None = None,
                side: int = THUMBNAIL_SIDE) -> str:
    """The HTML of one gallery page (`page`: a key of PAGES) showing the `selected` rows of
    `query_table`s, whose ``query`` and ``photo`` are rows of `queries[split]` and
    `catalogues[split]`. `counts`: queries looked at per split, for the introduction."""
    title, what = PAGES[page]
    looked_at = ", ".join(f"{n} {split}" for split, n in (counts or {}).items())
    intro = (f"{what} Each query photo (blue border) is followed by the method's five answers, best first, each "
             "shown by the catalogue photo of that individual most similar to the query, with its cosine "
             "similarity; the answer equal to the query's truth has a green border and is marked &#10003;. "
             f"new_whale is answered where the similarity falls below the threshold chosen on validation "
             f"({_similarity(threshold)}). Confidence: how far rank 1 lies past that threshold. Validation queries "
             "are answered from the fit photos of train, test queries from all of train."
             + (f" Queries looked at: {_e(looked_at)}." if looked_at else ""))
    cache: dict = {}
    sections = [_query_section(row, queries, catalogues, threshold, side, cache) for row in selected.itertuples()]
    if not sections:
        sections = ['<p class="empty">No query to show here.</p>']
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(method)}: {_e(title.lower())}</title>\n<style>{STYLE}</style>\n</head>\n"
            f'<body data-page="{_e(page)}" data-method="{_e(method)}" data-threshold="{_similarity(threshold)}">\n'
            f"<h1>{_e(method)}: {_e(title.lower())} ({len(selected)})</h1>\n<p class=\"intro\">{intro}</p>\n"
            + "\n".join(sections) + "\n</body>\n</html>\n")


def chosen_threshold(curve_csv: str | Path) -> float:
    """The new_whale threshold marked chosen in a threshold curve (columns threshold, chosen)."""
    curve = read_table(curve_csv)
    chosen = curve.loc[curve["chosen"].str.lower() == "true", "threshold"]
    if len(chosen) != 1:
        raise ValueError(f"{curve_csv}: expected one row chosen, found {len(chosen)}")
    return float(chosen.iloc[0])


def read_squares(array_npy: str | Path, index_csv: str | Path) -> dict[str, np.ndarray]:
    """Each image's preprocessed square, by name: views of the memory-mapped array (read only
    when used)."""
    array = np.load(array_npy, mmap_mode="r")
    index = read_table(index_csv)
    if len(index) != len(array):
        raise ValueError(f"{index_csv} lists {len(index)} images but {array_npy} holds {len(array)}")
    return {image: array[row] for row, image in enumerate(index["image"])}


def _photos(names: Sequence[str], ids: Sequence[str], embeddings: np.ndarray, squares: dict[str, np.ndarray],
            source: str) -> Photos:
    missing = [name for name in names if name not in squares]
    if missing:
        raise ValueError(f"{len(missing)} images have no preprocessed square in {source}, e.g. {missing[:3]}")
    return Photos(list(names), list(ids), normalise(embeddings), [squares[name] for name in names])


def _answers_of(images: Sequence[str], predictions: dict[str, list[str]], source: str) -> list[list[str]]:
    missing = [image for image in images if image not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} images have no answers in {source}, e.g. {missing[:3]}")
    return [predictions[image] for image in images]


def write_galleries(*, train_embeddings: str | Path, train_index: str | Path, test_embeddings: str | Path,
                    test_index: str | Path, split_csv: str | Path, validation_predictions: str | Path,
                    test_predictions: str | Path, threshold_curve: str | Path, train_images: str | Path,
                    train_images_index: str | Path, test_images: str | Path, test_images_index: str | Path,
                    best_hits_out: str | Path, worst_misses_out: str | Path, size: int,
                    test_truth: str | Path | None = None,
                    additions: tuple[str | Path, str | Path, str | Path] | None = None,
                    method: str = "metric_learning") -> dict[str, int]:
    """Write the best-hits and worst-misses pages of `size` queries each (see the module).

    Validation queries (train photos of subset validation, with their truth) are shown against
    the fit photos of train, as they were answered; test queries, where `test_truth` (a CSV
    Image,Id) is given, against all of train plus `additions` (embeddings .npy, index .csv,
    preprocessed squares .npy), if any. Returns the number of queries looked at per split.
    """
    if size < 1:
        raise ValueError(f"gallery size must be 1 or more, got {size}")
    threshold = chosen_threshold(threshold_curve)
    embeddings, _ = read_embeddings(train_embeddings, train_index)
    test_embedding, test_table = read_embeddings(test_embeddings, test_index)
    # The method's own searches: each query shown against the catalogue it was answered from.
    validation_search, test_search = Queries(train_table(train_index, split_csv, len(embeddings)),
                                             test_table[["image"]], str(split_csv)).searches()
    train_squares = read_squares(train_images, train_images_index)
    everyone = test_search.catalogue
    train_photos = _photos(everyone["image"].tolist(), everyone["id"].tolist(), embeddings, train_squares,
                           str(train_images))

    validation = train_photos.subset(validation_search.query_rows)
    validation_catalogue = train_photos.subset(validation_search.catalogue_rows)
    tables = [query_table(validation, "validation", validation_search.queries["truth"].tolist(),
                          _answers_of(validation.names, read_predictions(validation_predictions),
                                      str(validation_predictions)),
                          validation_catalogue, threshold)]
    queries, catalogues = {"validation": validation}, {"validation": validation_catalogue}

    if test_truth:
        catalogue = train_photos.subset(test_search.catalogue_rows)
        if additions:
            added_npy, added_csv, added_images = additions
            added, added_index = read_embeddings(added_npy, added_csv)
            added_squares = np.load(added_images, mmap_mode="r")
            if len(added_squares) != len(added):
                raise ValueError(f"{added_images} holds {len(added_squares)} images for {len(added)} embeddings "
                                 f"in {added_npy}")
            joined, ids = extend_catalogue(catalogue.embeddings, catalogue.ids, added, added_index["id"].tolist())
            catalogue = Photos([*catalogue.names, *added_index["image"]], ids, normalise(joined),
                               [*catalogue.squares, *(added_squares[row] for row in range(len(added_squares)))])
        truth = read_table(test_truth)
        truth = dict(zip(truth["Image"], truth["Id"]))
        # Test photos rejected at ingest have a truth but no embedding: they cannot be shown.
        rows = test_search.query_rows[test_search.queries["image"].isin(list(truth)).to_numpy()]
        names = test_table["image"].iloc[rows].tolist()
        test = _photos(names, [truth[name] for name in names], test_embedding[rows],
                       read_squares(test_images, test_images_index), str(test_images))
        tables.append(query_table(test, "test", test.ids,
                                  _answers_of(names, read_predictions(test_predictions), str(test_predictions)),
                                  catalogue, threshold))
        queries["test"], catalogues["test"] = test, catalogue

    table = pd.concat(tables, ignore_index=True)
    counts = {split: int((table["split"] == split).sum()) for split in queries}
    for page, selected, out in (("best_hits", best_hits(table, size), best_hits_out),
                                ("worst_misses", worst_misses(table, size), worst_misses_out)):
        write_text(render_page(page, selected, queries, catalogues, threshold, method=method, counts=counts), out)
        log.info("%s: %d queries shown in %s", page, len(selected), out)
    log.info("queries looked at: %s; new_whale threshold %g", counts, threshold)
    return counts
