"""The researcher's loop: what people decided about a run's test photos, and the catalogue it grows.

In photo-ID work a person confirms every match. The review page (`review_page`) shows each
test photo beside a method's five candidates; a reviewer's decisions come back as a CSV,
``Image,decision,Id`` (and optionally ``by``: person or auto), one row a photo:

- ``confirmed``: the photo is of the known individual ``Id`` (of train, or one a review made);
- ``new``: a new individual. ``Id`` names it; empty, it gets `new_individual_id` of the photo.
  Photos of one new individual seen twice share the ``Id`` ("same as" on the page);
- ``unsure``: nobody could tell; the photo stays out of the catalogue.

`read_decisions` checks every row of every file before anything is used: a decision that names
an image that is not one of the run's test photos or an unknown id, a photo decided twice
differently, or a malformed file is a ValueError naming the file and line. Nothing is half
applied. The confirmed and new photos then join every method's test catalogue, as photos of
their individuals, without retraining (`identification.Queries`), and answer first for
themselves.

`catalogue_table` is the catalogue as data: every photo of a known individual, train and
reviewed, and where it came from; `individuals_table` the same by individual, for the next
season's survey. `auto_accept` is the score above which a method's rank-1 answers were right at
a chosen precision on validation; `write_review` makes the page, its photos and evidence drawn as
the candidate gallery draws them (`gallery`, imported where the page is made: it needs OpenCV).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .identification import IDENTIFIED
from .ingest import NEW_WHALE
from .review_page import AutoAccept, new_individual_id

DECISIONS = ("confirmed", "new", "unsure")
DECISION_COLUMNS = ("Image", "decision", "Id")
REVIEWED_COLUMNS = ["image", "id", "decision", "source"]


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in DECISION_COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"{path}: no {', '.join(missing)} column: expected a header "
                                 f"{','.join(DECISION_COLUMNS)} (the review page's export)")
            rows = []
            for row in reader:
                if None in row:
                    raise ValueError(f"{path}, line {reader.line_num}: more fields than the header's "
                                     f"{len(columns)}")
                rows.append({key.strip(): (value or "").strip() for key, value in row.items()})
            return rows
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from None


def read_decisions(paths: Sequence[str | Path], test_images: Sequence[str], known_ids: Sequence[str]
                   ) -> pd.DataFrame:
    """The decided photos of the decision files `paths`, read in order: (image, id, decision,
    source: the file), one row a photo, ``unsure`` ones included with an empty id.

    `test_images` are the run's test photos, `known_ids` the train catalogue's individuals.
    A confirmed id must be one of them or a new individual of some decision file. Raises
    ValueError naming the file and line of the first wrong row; the same decision twice is
    kept once."""
    test_images, known = set(test_images), set(known_ids) - {NEW_WHALE}
    read = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"review decisions {path}: file not found")
        for line, row in enumerate(_rows(path), start=2):
            where = f"{path}, line {line}"
            image, decision, individual = row["Image"], row["decision"].lower(), row["Id"]
            if not image:
                raise ValueError(f"{where}: no Image")
            if image not in test_images:
                raise ValueError(f"{where}: {image!r} is not a test photo of this run")
            if decision not in DECISIONS:
                raise ValueError(f"{where}: decision {row['decision']!r}: expected one of {', '.join(DECISIONS)}")
            if decision == "new":
                individual = individual or new_individual_id(image)
                if individual in known:
                    raise ValueError(f"{where}: {image} is decided new but {individual!r} is a known individual: "
                                     "decide it confirmed")
            elif decision == "unsure":
                individual = ""
            if individual == NEW_WHALE:
                raise ValueError(f"{where}: {NEW_WHALE} is no individual: decide the photo new, or unsure")
            read.append((image, individual, decision, str(path), where))
    new_ids = {individual for _, individual, decision, _, _ in read if decision == "new"}
    decided: dict[str, tuple] = {}
    for image, individual, decision, source, where in read:
        if decision == "confirmed" and individual not in known | new_ids:
            raise ValueError(f"{where}: {image} is confirmed as {individual!r}, which is neither a known individual "
                             "nor a new one of the decisions" if individual else f"{where}: confirmed without an Id")
        earlier = decided.get(image)
        if earlier is None:
            decided[image] = (image, individual, decision, source, where)
        elif earlier[1:3] != (individual, decision):
            raise ValueError(f"{where}: {image} is decided {decision} {individual!r}, but {earlier[4]} decided it "
                             f"{earlier[2]} {earlier[1]!r}: keep one")
    return pd.DataFrame([row[:4] for row in decided.values()], columns=REVIEWED_COLUMNS)


def identified(reviewed: pd.DataFrame) -> pd.DataFrame:
    """The reviewed photos that join the catalogue: confirmed and new (image, id, decision, source)."""
    return reviewed[reviewed["decision"].isin(IDENTIFIED)].reset_index(drop=True)


def catalogue_table(train: pd.DataFrame, reviewed: pd.DataFrame) -> pd.DataFrame:
    """Every photo of a known individual: the `train` photos (image, id) but new_whale's, then
    the `reviewed` photos that are confirmed or new. Columns image, id, split (train or test),
    source (train, or the decision file), decision (empty for train)."""
    train = train.loc[train["id"] != NEW_WHALE, ["image", "id"]].assign(split="train", source="train", decision="")
    added = identified(reviewed)[["image", "id", "source", "decision"]].assign(split="test")
    columns = ["image", "id", "split", "source", "decision"]
    return pd.concat([train[columns], added[columns]], ignore_index=True)


def individuals_table(catalogue: pd.DataFrame) -> pd.DataFrame:
    """The catalogue by individual, one row each, as a spreadsheet opens it: id, photos, of them
    from train and from review, new (whether a review made it), and the photos' names
    (space-separated, train first)."""
    rows = []
    for individual, photos in catalogue.groupby("id", sort=True):
        from_review = photos["split"] == "test"
        rows.append({"id": individual, "photos": len(photos), "train_photos": int((~from_review).sum()),
                     "reviewed_photos": int(from_review.sum()), "new": bool((photos["decision"] == "new").any()),
                     "images": " ".join(photos["image"])})
    return pd.DataFrame(rows, columns=["id", "photos", "train_photos", "reviewed_photos", "new", "images"])


def auto_accept(scores: Sequence[float], correct: Sequence[bool], precision: float) -> AutoAccept:
    """The lowest score at or above which validation's rank-1 answers were right at least
    `precision` of the time: the rank-1 `scores` of the validation queries whose rank 1 is a
    known individual, and whether each was `correct`. The largest such set of the most
    confident is taken; none reaching it gives an infinite threshold (everything to a person)."""
    if not 0 < precision <= 1:
        raise ValueError(f"auto-accept precision must be in (0, 1], got {precision}")
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, bool)
    if scores.shape != correct.shape:
        raise ValueError(f"{len(scores)} scores for {len(correct)} answers")
    keep = np.isfinite(scores)
    scores, correct = scores[keep], correct[keep]
    order = np.argsort(-scores, kind="stable")
    scores, correct = scores[order], correct[order]
    # Only where the score changes can the cut fall: equal scores are accepted together.
    last_of_equals = np.append(scores[1:] != scores[:-1], True) if len(scores) else np.zeros(0, bool)
    reached = (np.cumsum(correct) / np.arange(1, len(scores) + 1) >= precision) & last_of_equals
    if not reached.any():
        return AutoAccept(precision, float("inf"), float("nan"), 0, len(scores))
    cut = int(np.flatnonzero(reached)[-1])
    return AutoAccept(precision, float(scores[cut]), float(correct[:cut + 1].mean()), cut + 1, len(scores),
                      wilson_lower_bound(int(correct[:cut + 1].sum()), cut + 1))


# One-sided 90%: the normal quantile of 0.9.
Z_90 = 1.2815515655446004


def wilson_lower_bound(right: int, answers: int, z: float = Z_90) -> float:
    """The Wilson score interval's lower end for `right` of `answers`: how low a precision
    measured on few answers may really be. On the right whales, 54 validation answers at 98%
    gave 95% on test."""
    if answers <= 0:
        return float("nan")
    share, z2 = right / answers, z * z
    centre = share + z2 / (2 * answers)
    spread = z * np.sqrt(share * (1 - share) / answers + z2 / (4 * answers * answers))
    return float((centre - spread) / (1 + z2 / answers))


# ---------------------------------------------------------------------------------- the page

# Pixels on the long side of a photo's picture on the review page: a reviewer needs the pattern's
# detail, and a run's page holds every test photo and every catalogue photo that speaks for one.
REVIEW_SIDE = 160


def review_queries(found, shown, threshold: float, accept_at: float, skip: set[str],
                   encounters: dict[str, str] | None = None) -> tuple[list, dict[str, str]]:
    """The test queries of `found` (`gallery.GalleryQueries`) as the review page shows them,
    least sure first, and the pictures of the photos they show (name: JPEG data URI): each query
    with its five answers shown by `shown` (`gallery.MethodEvidence`), verified photos with their
    inlier lines; rank 1 accepted where it is a known individual scored at or above `accept_at`.
    Sure means far past the new_whale `threshold`, either way (`gallery.confidence`). Photos in
    `skip` (already decided) are left out. The photos of one of `encounters` (photo: encounter)
    are one query, answered alike: each answer is shown by the photo of theirs that matched it
    best."""
    from .gallery import confidence, jpeg_uri
    from .review_page import ReviewCandidate, ReviewQuery

    queries, catalogue, evidence = found.queries["test"], shown.catalogues["test"], shown.evidence["test"]
    groups: dict[str, list[int]] = {}
    for q, image in enumerate(queries.names):
        if image not in skip:
            groups.setdefault((encounters or {}).get(image, "\0" + image), []).append(q)
    shown_queries, margins, pictures = [], [], {}

    def picture(name: str, square) -> None:
        if name not in pictures:
            pictures[name] = jpeg_uri(square, REVIEW_SIDE)

    for members in groups.values():
        for q in members:
            picture(queries.names[q], queries.squares[q])
        first = members[0]
        answers = found.answers["test"][first]
        candidates = []
        # where each photo of the encounter answered each individual (answered alike, unless decided apart)
        ranks = {m: {individual: r for r, individual in enumerate(found.answers["test"][m])} for m in members}
        for rank, individual in enumerate(answers):
            # the encounter's photo that speaks best for this answer: the highest score, else one with a photo
            speaking = [(m, ranks[m][individual]) for m in members if individual in ranks[m]]
            q, at = max(speaking, key=lambda pair: (np.nan_to_num(evidence.score[pair], nan=-np.inf),
                                                    evidence.photo[pair] >= 0, pair[0] == first))
            photo, score = int(evidence.photo[q, at]), float(evidence.score[q, at])
            name = lines = None
            if photo >= 0 and individual != NEW_WHALE:
                name = catalogue.names[photo]
                picture(name, catalogue.squares[photo])
                verified = evidence.verified is not None and bool(evidence.verified[q, at])
                if verified and shown.matches is not None:
                    lines = tuple(tuple(float(v) for v in line) for line in shown.matches("test", q, photo))
            candidates.append(ReviewCandidate(individual, score, name, lines,
                                              None if q == first else queries.names[q]))
        first_score = candidates[0].score
        # the encounter's best score of any known individual (NaN where none has one)
        best_known = np.fmax.reduce(evidence.best_known[members])
        accepted = answers[0] != NEW_WHALE and np.isfinite(first_score) and first_score >= accept_at
        shown_queries.append(ReviewQuery(queries.names[first], candidates,
                                         first_score if answers[0] != NEW_WHALE else float("nan"), bool(accepted),
                                         tuple(queries.names[q] for q in members[1:])))
        margins.append(confidence(answers[0], first_score, float(best_known), threshold))
    margins = np.asarray(margins, np.float64)
    # least sure first; scores unknown (a method that shows none) keep the answers' order
    order = np.argsort(np.where(np.isfinite(margins), margins, np.inf), kind="stable")
    return [shown_queries[i] for i in order], pictures


def write_review(*, method: str, run: str, precision: float, split_csv: str | Path,
                 validation_predictions: str | Path, test_predictions: str | Path, threshold_curve: str | Path,
                 train_images: str | Path, train_images_index: str | Path, test_images: str | Path,
                 test_images_index: str | Path, page_out: str | Path, queue_out: str | Path,
                 auto_accept_out: str | Path, reviewed: str | Path | None = None,
                 encounters: str | Path | None = None, **files) -> AutoAccept:
    """The review page of `method`'s test answers (`review_page.render_review_page`), its queue
    (position, image, answer: rank 1, score, accepted) and the auto-accept figures: the score
    at `precision` on validation (`auto_accept`), and how many test photos it accepts and
    leaves to a person. `files`: where the method's evidence is (`gallery.method_evidence`).
    Photos already decided (`reviewed`) are not asked again; the photos of one of `encounters`
    (the data folder's encounters.csv) are one query (`review_queries`)."""
    from .files import write_csv, write_text
    from .gallery import chosen_threshold, gallery_queries, method_evidence
    from .identification import read_encounters, read_reviewed
    from .review_page import render_review_page

    found = gallery_queries(split_csv=split_csv, train_images=train_images, train_images_index=train_images_index,
                            test_images=test_images, test_images_index=test_images_index,
                            validation_predictions=validation_predictions, test_predictions=test_predictions,
                            reviewed=reviewed, every_test_photo=True)
    shown = method_evidence(method, found, any_method=True, **files)
    validation_answers = found.answers["validation"]
    first = np.array([row[0] for row in validation_answers])
    known = first != NEW_WHALE
    accept = auto_accept(shown.evidence["validation"].score[known, 0],
                         first[known] == np.asarray(found.queries["validation"].ids)[known], precision)
    decided = set(read_reviewed(reviewed)["image"])
    queue, pictures = review_queries(found, shown, chosen_threshold(threshold_curve), accept.threshold, decided,
                                     read_encounters(encounters, found.queries["test"].names))
    catalogue_ids = sorted(set(shown.catalogues["test"].ids) - {NEW_WHALE})
    write_text(render_review_page(queue, photos=pictures, run=run, method=method, score_name=shown.score_name,
                                  auto_accept=accept, known_ids=catalogue_ids), page_out)
    # a row for each photo: an encounter's photos share their query's position
    rows = [(position, image, q.candidates[0].id, q.candidates[0].score, q.accepted)
            for position, q in enumerate(queue) for image in (q.image, *q.others)]
    write_csv(pd.DataFrame(rows, columns=["position", "image", "answer", "score", "accepted"]), queue_out)
    accepted = sum(row[4] for row in rows)
    write_csv(pd.DataFrame([{"method": method, "precision": precision, "threshold": accept.threshold,
                             "validation_precision": accept.validation_precision,
                             "validation_accepted": accept.validation_accepted,
                             "validation_queries": accept.validation_queries, "test_photos": len(rows),
                             "test_accepted": accepted, "to_review": len(rows) - accepted,
                             "decided_before": len(decided)}]), auto_accept_out)
    return accept
