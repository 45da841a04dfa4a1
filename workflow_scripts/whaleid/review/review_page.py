"""The review page: a person goes through a run's test photos and decides, by keyboard, who each one is.

Each test photo (a `ReviewQuery`) is shown beside the identification method's five ranked
candidates (`ReviewCandidate`), each by the catalogue photo that speaks for it, with its score;
the queue comes least sure first. A photo whose rank-1 answer is a known individual scored at or
above the auto-accept threshold (`AutoAccept`: chosen for a precision asked for, on the fit
photos' out-of-fold answers or on validation's) is marked auto-accepted: it counts as
confirmed unless a person decides otherwise.

A person decides each photo: ``confirmed`` (one of the candidates, or another known individual
typed in), ``new`` (a new individual: its id is `new_individual_id` of the photo, or, "same as",
the id of another photo already decided new, those the local method proposes as the same new
individual first: `with_proposals`) or ``unsure``. Decisions are kept in the browser's
localStorage, under a key of the run, the method and the photos (`storage_key`), so a reload or
another run's page loses nothing; they are exported as ``decisions.csv`` (EXPORTED_COLUMNS: one
row a decided photo, ``by`` person or auto), which `decisions.read_decisions` reads back.

The page is one HTML file (inline CSS and script) beside a folder, ``thumbnails/``, of the
photos it shows (`PagePhoto`): each photo itself, whole and in colour, as a JPEG of long side
review.thumbnail_side (`pictures.write_thumbnails`), referred to by a relative URL and loaded as
it comes near the view. So the page opens from disk with no server and fetches nothing from the
network; copied, it takes the folder with it. Inlined as data URIs, 800-pixel pictures of the
thousands of photos a run's page shows would make it hundreds of megabytes; as files, the page
is a few megabytes and the browser reads only the pictures in view. A candidate's inlier matches
are lines of an SVG drawn over the query and the catalogue photo side by side, in each photo's
frame (`pictures.in_photo_frame`). A key opens the pair on the whole screen, to zoom into the
pattern: the photo files themselves (file: URLs of this machine; where the page is opened on
another, the thumbnails). Its markup, style and script are `templates/review_page.*`
(`html.render`): here are the values they show.

`write_review` makes the page of a run: its queue of test photos (`review_queries`), their
evidence as the candidate gallery finds it (`evidence`), and their thumbnails (`pictures`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pandas as pd

from whaleid.identification.auto_accept import AutoAccept, auto_accept, checked_on_validation, fold_auto_accept
from whaleid.identification.search import read_encounters, read_reviewed
from whaleid.io.files import write_csv, write_text
from whaleid.io.tables import read_table
from whaleid.review.decisions import new_individual_id
from whaleid.review.evidence import chosen_threshold, confidence, gallery_queries, method_evidence
from whaleid.review.html import check_score_name, render
from whaleid.review.pictures import Original, in_photo_frame, write_thumbnails
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE

# What decisions.csv holds, as the page exports it.
EXPORTED_COLUMNS = ("Image", "decision", "Id", "by")
STORAGE_PREFIX = "whaleid-review"


@dataclass(frozen=True)
class ReviewCandidate:
    """One of the method's answers for a query: ``id`` (an individual, or new_whale: no known
    individual), its ``score`` (NaN: none), the name of the catalogue ``photo`` that speaks for it
    (None: a placeholder), and where the method verified that photo, its inlier ``lines``: (query
    x, y, photo x, y) each a share of the side of its photo's square (the square that centres
    the photo, as the local method's keypoints lie in it: `pictures.in_photo_frame`), drawn
    between the two side by side (None: the photo alone)."""

    id: str
    score: float
    photo: str | None
    lines: tuple[tuple[float, float, float, float], ...] | None = None
    # the query photo the lines start from, where an encounter's other photo matched best (None: the query's)
    query: str | None = None
    # where the photo is a test photo self-training gave this id, the round it did (None: a catalogue photo)
    pseudo_round: int | None = None

    @property
    def inliers(self) -> int | None:
        return None if self.lines is None else len(self.lines)


@dataclass(frozen=True)
class ReviewQuery:
    """A test photo to decide: its ``image`` name (its picture is the page's photo of that
    name), the method's ``candidates`` (best first), ``confidence`` (the rank-1 score, NaN: none)
    and whether it is ``accepted`` (auto-accepted: a known individual at rank 1, scored at or
    above the threshold). ``others``: the other photos of its encounter, decided with it (one
    decision, exported as a row for each photo). ``proposed``: the other photos on the page
    proposed as the same new individual (`new_individuals.propose`), which a person deciding it
    new may take it to be ("same as")."""

    image: str
    candidates: list[ReviewCandidate]
    confidence: float
    accepted: bool
    others: tuple[str, ...] = ()
    proposed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PagePhoto:
    """A photo as the page shows it: its ``thumbnail`` (a URL relative to the page, of a file
    in a folder beside it), the ``width`` and ``height`` of the frame the thumbnail shows (their
    ratio places the photo and its inlier lines), and its ``original``, the photo file itself
    (a file: URL; None: the thumbnail is all there is), which the full-screen view shows."""

    thumbnail: str
    width: int
    height: int
    original: str | None = None


def _threshold_text(value: float, score_name: str) -> str:
    """A threshold as the statement writes it: as precise as it was chosen (a probability of
    0.9995 is not "> 0.999")."""
    return f"{value:g}" if score_name == "inliers" else f"{value:.4g}"


def _percent(share: float) -> str:
    return f"{100 * share:g}%"


def storage_key(run: str, method: str, images: Sequence[str]) -> str:
    """The localStorage key of a page's decisions: the run, the method and a short hash of the
    photos' names. Every file:// page shares one browser storage, so two runs' pages (or one run
    reviewed again with other photos) must not read each other's decisions."""
    digest = hashlib.sha1("\n".join(images).encode("utf-8")).hexdigest()[:12]
    return f"{STORAGE_PREFIX}/{run}/{method}/{digest}"


def auto_accept_statement(auto_accept: AutoAccept | None, photos: int, accepted: int, score_name: str) -> str:
    """What the header says of the auto-accepted photos (plain text): how many, above what
    threshold, how right the answers it was chosen on were at or above it and how surely, how
    right validation's were where it was chosen on others, and how many a person still has to
    look at."""
    to_look_at = photos - accepted
    if auto_accept is None:
        return (f"Nothing is auto-accepted: a person has to look at every photo ({photos})." if not accepted else
                f"Auto-accepted: {accepted} of {photos} photos. A person still has to look at {to_look_at}.")
    asked = _percent(auto_accept.precision)
    chosen_on = ("validation" if auto_accept.on_validation else
                 "the fit photos' out-of-fold answers (each photo asked against the other folds' photos)")
    if not math.isfinite(auto_accept.threshold):
        surely = "" if auto_accept.on_validation else " with 90% confidence"
        return (f"Nothing is auto-accepted: on {chosen_on}, no threshold on the rank-1 {score_name} made the rank-1 "
                f"answers above it right {asked} of the time{surely} ({auto_accept.chosen_answers} answers with a "
                f"known individual at rank 1), so a person has to look at every photo ({photos}).")
    right = round(auto_accept.chosen_precision * auto_accept.chosen_accepted)
    statement = (f"Auto-accepted: {accepted} of {photos} photos, whose rank-1 {score_name} is at least "
                 f"{_threshold_text(auto_accept.threshold, score_name)}: on {chosen_on}, rank-1 answers at or above it "
                 f"were right {100 * auto_accept.chosen_precision:.1f}% of the time ({right} of "
                 f"{auto_accept.chosen_accepted}; at least {100 * auto_accept.lower_bound:.1f}% with 90% confidence) "
                 f"\N{EM DASH} asked for {asked}.")
    if not auto_accept.on_validation:
        if auto_accept.validation_accepted:
            right = round(auto_accept.validation_precision * auto_accept.validation_accepted)
            statement += f" On validation, {right} of the {auto_accept.validation_accepted} at or above it were right."
        else:
            statement += " No validation answer reached it."
    return statement + f" A person still has to look at {to_look_at}."


def _beside_the_page(url: str) -> bool:
    """Whether `url` names a file in the page's folder or below it: relative, and never up."""
    parts = urlsplit(url)
    return bool(parts.path) and not (parts.scheme or parts.netloc or url.startswith("/")
                                     or ".." in parts.path.split("/"))


def _check(queries: Sequence[ReviewQuery], photos: Mapping[str, PagePhoto], score_name: str) -> None:
    """Raise ValueError on queries the page cannot show or keep decisions of."""
    check_score_name(score_name)
    twice = sorted(image for image, n in Counter(image for query in queries
                                                 for image in (query.image, *query.others)).items() if n > 1)
    if twice:
        raise ValueError(f"review queries name the photo {twice[0]!r} twice: each photo is decided once")
    seen: dict[str, str] = {}
    on_page = {image for query in queries for image in (query.image, *query.others)}
    for query in queries:
        elsewhere = sorted(set(query.proposed) - on_page)
        if elsewhere:
            raise ValueError(f"{query.image}: proposed as the same individual as {elsewhere[0]!r}, which is not a "
                             "photo on the page")
        if not query.image:
            raise ValueError("a review query without an image name")
        new_id = new_individual_id(query.image)
        if new_id in seen:
            # decisions are kept by image, and two photos decided new must not become one individual
            raise ValueError(f"review queries name the photo as {seen[new_id]!r} and {query.image!r}: each photo "
                             f"needs its own new individual id ({new_id!r})")
        seen[new_id] = query.image
        if len(query.candidates) > N_ANSWERS:
            raise ValueError(f"{query.image}: {len(query.candidates)} candidates; the page shows at most "
                             f"{N_ANSWERS} (keys 1 to {N_ANSWERS})")
        if query.accepted and (not query.candidates or query.candidates[0].id == NEW_WHALE):
            raise ValueError(f"{query.image} is auto-accepted but its rank 1 is not a known individual")
        named = [query.image, *query.others, *query.proposed] + [candidate.photo for candidate in query.candidates
                                                if candidate.photo is not None]
        missing = [name for name in named if name not in photos]
        if missing:
            raise ValueError(f"{query.image}: no picture of {', '.join(map(repr, missing))} among the page's photos")
    for name, photo in photos.items():
        # the page shows what goes with it, wherever it is opened: nothing from the network
        if not _beside_the_page(photo.thumbnail):
            raise ValueError(f"the thumbnail of {name!r} is not a file beside the page ({photo.thumbnail[:60]!r})")
        if photo.original is not None and not photo.original.startswith("file:"):
            raise ValueError(f"the original of {name!r} is not a file: URL ({photo.original[:60]!r})")
        if min(photo.width, photo.height) < 1:
            raise ValueError(f"the photo {name!r} has no frame ({photo.width} x {photo.height})")


# The SVG's units: each photo shown whole in a PAIR_SIDE square, the catalogue photo PAIR_GAP to
# the right of the query, as the style's .pair places them (in pixels), so that a row of five
# candidates fits 1280; the full-screen view scales the same drawing up.
PAIR_SIDE, PAIR_GAP = 100, 4


@dataclass(frozen=True)
class _Pair:
    """The query photo (``query``: its name) and a catalogue photo side by side, as an SVG of
    ``width`` by ``height`` units draws the inlier matches between them: the path data of the
    ``lines`` and of their ``ends``."""

    query: str
    lines: str
    ends: str
    width: int = 2 * PAIR_SIDE + PAIR_GAP
    height: int = PAIR_SIDE


@dataclass(frozen=True)
class _Candidate:
    """A candidate as its figure shows it: its ``rank`` (its key), what its picture shows in
    words (``alt``), and where the method verified its photo, the ``pair`` it is drawn in (None:
    the photo alone, or a placeholder)."""

    rank: int
    candidate: ReviewCandidate
    alt: str
    pair: _Pair | None


@dataclass(frozen=True)
class _Section:
    """A query as its section shows it, at ``position`` in the queue: the id it is given if
    decided new (``new_id``), its rank-1 answer, its encounter's ``others`` and the photos
    ``proposed`` as the same new individual (JSON lists, for the script), how it stands before a
    person decides (``decision``, ``decided_id``, ``by``, ``status``), and its ``candidates``."""

    position: int
    query: ReviewQuery
    new_id: str
    rank1: str
    others: str
    proposed: str
    decision: str
    decided_id: str
    by: str
    status: str
    candidates: list[_Candidate]


def _in_box(shares: np.ndarray, photo: PagePhoto, left: float) -> np.ndarray:
    """Positions in `photo` (shares of its square's side, n x 2) in the SVG's units, the photo
    shown whole in the PAIR_SIDE square at `left`, centred, as the style's object-fit places it."""
    frame = np.array([photo.width, photo.height], np.float64)
    shown = frame * (PAIR_SIDE / frame.max())
    return in_photo_frame(shares, photo.width, photo.height) * shown + (PAIR_SIDE - shown) / 2 + [left, 0]


def _pair(query: str, candidate: ReviewCandidate, photos: Mapping[str, PagePhoto]) -> _Pair:
    """The query and a verified catalogue photo side by side, the inlier matches between them."""
    query = candidate.query or query
    matched = np.asarray(candidate.lines or (), np.float64).reshape(-1, 4)
    starts = _in_box(matched[:, :2], photos[query], 0)
    stops = _in_box(matched[:, 2:], photos[candidate.photo], PAIR_SIDE + PAIR_GAP)
    # hundredths of a unit: finer than a keypoint at max_side 1600 when the view zooms in on it
    lines = "".join(f"M{x1:.2f} {y1:.2f}L{x2:.2f} {y2:.2f}" for (x1, y1), (x2, y2) in zip(starts, stops))
    ends = "".join(f"M{x1:.2f} {y1:.2f}h0M{x2:.2f} {y2:.2f}h0" for (x1, y1), (x2, y2) in zip(starts, stops))
    return _Pair(query, lines, ends)


def _candidate(query: str, rank: int, candidate: ReviewCandidate, photos: Mapping[str, PagePhoto]) -> _Candidate:
    if candidate.id == NEW_WHALE:
        alt = "new_whale: a new individual"
    elif candidate.photo is None:
        alt = f"{candidate.id}: no photo"
    else:
        photo = (f"catalogue photo {candidate.photo}" if candidate.pseudo_round is None else
                 f"test photo {candidate.photo}, given this id by self-training")
        alt = (f"{candidate.id}, {photo}" if candidate.inliers is None else
               f"the query beside {candidate.id}'s {photo}, {candidate.inliers} inlier matches")
    pair = (_pair(query, candidate, photos) if candidate.lines is not None and candidate.photo is not None
            else None)
    return _Candidate(rank, candidate, alt, pair)


def _section(position: int, query: ReviewQuery, photos: Mapping[str, PagePhoto]) -> _Section:
    rank1 = query.candidates[0].id if query.candidates else ""
    # the page as written, before its script runs: an auto-accepted photo is confirmed
    decision, decided_id, by, status = (("confirmed", rank1, "auto", f"auto-accepted: {rank1}") if query.accepted
                                        else ("", "", "", "to decide"))
    return _Section(position, query, new_individual_id(query.image), rank1, json.dumps(list(query.others)),
                    json.dumps(list(query.proposed)), decision, decided_id, by, status,
                    [_candidate(query.image, rank, candidate, photos)
                     for rank, candidate in enumerate(query.candidates, start=1)])


def render_review_page(queries: Sequence[ReviewQuery], *, photos: Mapping[str, PagePhoto], run: str, method: str,
                       score_name: str, auto_accept: AutoAccept | None, known_ids: Sequence[str]) -> str:
    """The page's HTML.

    One section a query, in the order given (least sure first), each photo shown as `photos`
    has it (every query and candidate photo named); `score_name` (a key of
    `html.SCORE_FORMATS`) is how the scores are labelled and written; `run` and `method` title the page
    and, with the queries' images, key its decisions in the browser (`storage_key`); `auto_accept`
    is stated in the header (None: no threshold); `known_ids` are the ids a person may type.
    Raises ValueError on queries the page cannot show (`_check`)."""
    _check(queries, photos, score_name)
    used = ({image for query in queries for image in (query.image, *query.others, *query.proposed)}
            | {c.photo for query in queries for c in query.candidates if c.photo})
    images = [query.image for query in queries]
    # counted in photos: an encounter's are decided together, but each is a photo looked at
    n_photos = sum(1 + len(query.others) for query in queries)
    accepted = sum(1 + len(query.others) for query in queries if query.accepted)
    return render("review_page.html.j2", run=run, method=method, score_name=score_name,
                  title=f"Review: {run} \N{MIDDLE DOT} {method}", storage_key=storage_key(run, method, images),
                  n_photos=n_photos, n_answers=N_ANSWERS,
                  statement=auto_accept_statement(auto_accept, n_photos, accepted, score_name),
                  known_ids=sorted(set(known_ids) - {NEW_WHALE}),
                  sections=[_section(position, query, photos) for position, query in enumerate(queries, start=1)],
                  # what the full-screen view shows of each photo
                  pictures={name: {"thumbnail": photos[name].thumbnail, "original": photos[name].original}
                            for name in sorted(used)})


def review_queries(found, shown, threshold: float, accept_at: float, skip: set[str],
                   encounters: dict[str, str] | None = None) -> tuple[list, dict[str, str]]:
    """The test queries of `found` (`evidence.GalleryQueries`) as the review page shows them,
    least sure first, and the photos they show (name: its preprocessed square): each query
    with its five answers shown by `shown` (`evidence.MethodEvidence`), verified photos with their
    inlier lines; rank 1 accepted where it is a known individual scored at or above `accept_at`,
    unless the photo that speaks for it is a test photo self-training labelled.
    Sure means far past the new_whale `threshold`, either way (`evidence.confidence`). Photos in
    `skip` (already decided) are left out. The photos of one of `encounters` (photo: encounter)
    are one query, answered alike: each answer is shown by the photo of theirs that matched it
    best."""
    queries, catalogue, evidence = found.queries["test"], shown.catalogues["test"], shown.evidence["test"]
    groups: dict[str, list[int]] = {}
    for q, image in enumerate(queries.names):
        if image not in skip:
            groups.setdefault((encounters or {}).get(image, "\0" + image), []).append(q)
    shown_queries, margins, squares = [], [], {}

    def picture(name: str, square) -> None:
        squares.setdefault(name, square)

    for members in groups.values():
        for q in members:
            picture(queries.names[q], queries.squares[q])
        first = members[0]
        answers = found.answers["test"][first]
        candidates = []
        # where each photo of the encounter answered each individual (answered alike, unless decided apart)
        ranks = {m: {individual: r for r, individual in enumerate(found.answers["test"][m])} for m in members}
        for individual in answers:
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
                                              None if q == first else queries.names[q],
                                              shown.pseudo_labelled.get("test", {}).get(name)))
        first_score = candidates[0].score
        # the encounter's best score of any known individual (NaN where none has one)
        best_known = np.fmax.reduce(evidence.best_known[members])
        # the threshold's promise was measured on catalogue photos: an answer a pseudo-label speaks
        # for goes to a person (on the right whales 47 such were 74% right, against 97.6%)
        accepted = (answers[0] != NEW_WHALE and np.isfinite(first_score) and first_score >= accept_at
                    and candidates[0].pseudo_round is None)
        shown_queries.append(ReviewQuery(queries.names[first], candidates,
                                         first_score if answers[0] != NEW_WHALE else float("nan"), bool(accepted),
                                         tuple(queries.names[q] for q in members[1:])))
        margins.append(confidence(answers[0], first_score, float(best_known), threshold))
    margins = np.asarray(margins, np.float64)
    # least sure first; scores unknown (a method that shows none) keep the answers' order
    order = np.argsort(np.where(np.isfinite(margins), margins, np.inf), kind="stable")
    return [shown_queries[i] for i in order], squares


def with_proposals(queries: Sequence[ReviewQuery], proposed: pd.DataFrame) -> list[ReviewQuery]:
    """`queries` with the photos `proposed` (``image``, ``group``: `new_individuals.PROPOSED_COLUMNS`)
    as the same new individual as each: the other photos of its photos' groups that are on the
    page, less its encounter's (decided with it already)."""
    group_of = dict(zip(proposed["image"].astype(str), proposed["group"].astype(np.int64)))
    members: dict[int, list[str]] = {}
    on_page = [image for query in queries for image in (query.image, *query.others)]
    for image in on_page:
        if image in group_of:
            members.setdefault(group_of[image], []).append(image)
    shown = []
    for query in queries:
        own = (query.image, *query.others)
        mates = [image for group in dict.fromkeys(group_of[i] for i in own if i in group_of)
                 for image in members[group] if image not in own]
        shown.append(replace(query, proposed=tuple(mates)))
    return shown


def read_proposed(path: str | Path) -> pd.DataFrame:
    """new_individuals.csv as rule local_new_individuals writes it (image, group, ...)."""
    proposed = pd.read_csv(path, dtype={"image": str, "linked_to": str})
    missing = {"image", "group"} - set(proposed.columns)
    if missing:
        raise ValueError(f"{path}: no column {', '.join(sorted(missing))}; rerun local_new_individuals")
    return proposed


def original_photos(names: Iterable[str], manifest: str | Path, folders: Mapping[str, str | Path],
                    added: str | Path | None = None) -> dict[str, Original]:
    """Where each photo of `names` is: in its split's folder of `folders` (train, test) where
    the ingest `manifest` (image, split, width, height) lists it, else in `added` (the catalogue
    additions' photos). Raises ValueError naming a photo found in neither."""
    listed = read_table(manifest)
    where = {image: (split, int(width), int(height))
             for image, split, width, height in listed[["image", "split", "width", "height"]].itertuples(index=False)}
    originals = {}
    for name in names:
        if name in where:
            split, width, height = where[name]
            originals[name] = Original(Path(folders[split], name), width, height)
        elif added is not None and Path(added, name).is_file():
            originals[name] = Original(Path(added, name))
        else:
            raise ValueError(f"{name}: no photo of that name in {manifest}" + (f" nor in {added}" if added else ""))
    return originals


def write_page_photos(photos: Mapping[str, Original | np.ndarray], folder: str | Path, page: str | Path, *,
                      long_side: int, n_jobs: int = 1) -> dict[str, PagePhoto]:
    """The `PagePhoto` of each of `photos` (name: its file, `pictures.Original`, or where that is
    not at hand, its preprocessed square), its thumbnail of long side `long_side` written in
    `folder` (`pictures.write_thumbnails`), which must be beside the `page`, and a photo file
    linked as the original."""
    folder = Path(folder)
    if folder.parent.resolve() != Path(page).parent.resolve():
        raise ValueError(f"the page's thumbnails ({folder}) must be a folder beside it ({page}), which it reads")
    thumbnails = write_thumbnails(photos, folder, long_side, n_jobs=n_jobs)
    # absolute: the page may be copied away from the results, on this machine
    files = {name: Path(os.path.abspath(photo.path)).as_uri() for name, photo in photos.items()
             if isinstance(photo, Original)}
    return {name: PagePhoto(quote(f"{folder.name}/{thumbnail.file}"), thumbnail.width, thumbnail.height,
                            files.get(name))
            for name, thumbnail in thumbnails.items()}


def write_review(*, method: str, run: str, precision: float, split_csv: str | Path,
                 validation_predictions: str | Path, test_predictions: str | Path, threshold_curve: str | Path,
                 train_images: str | Path, train_images_index: str | Path, test_images: str | Path,
                 test_images_index: str | Path, page_out: str | Path, queue_out: str | Path,
                 auto_accept_out: str | Path, thumbnails_out: str | Path | None = None,
                 reviewed: str | Path | None = None, encounters: str | Path | None = None,
                 fold_answers: tuple[str | Path, str | Path] | None = None,
                 new_individuals: str | Path | None = None, manifest: str | Path | None = None,
                 photo_folders: Mapping[str, str | Path] | None = None, added_photos: str | Path | None = None,
                 thumbnail_side: int = 800, n_jobs: int = 1, **files) -> AutoAccept:
    """The review page of `method`'s test answers (`review_page.render_review_page`), its queue
    (position, image, answer: rank 1, score, accepted) and the auto-accept figures: the score
    at `precision` (`auto_accept`), chosen on the local method's out-of-fold answers where
    `fold_answers` names them (its fold_answers.csv and poolings.csv: `fold_auto_accept`) and
    checked on validation, else chosen on validation; and how many test photos it accepts and
    leaves to a person. `files`: where the method's evidence is (`evidence.method_evidence`).
    Photos already decided (`reviewed`) are not asked again; the photos of one of `encounters`
    (the data folder's encounters.csv) are one query (`review_queries`). Each photo is shown beside
    those proposed as the same new individual in `new_individuals` (rule local_new_individuals'
    file, None: none proposed). The page shows a photo by its thumbnail (long side
    `thumbnail_side`) in `thumbnails_out`, a folder beside it (None: its ``thumbnails``), made
    `n_jobs` at once (`write_page_photos`): of the photo file, which the ingest `manifest` says
    which of `photo_folders` (train, test) holds (or `added_photos`, the catalogue additions');
    without a manifest, of its preprocessed square."""
    found = gallery_queries(split_csv=split_csv, train_images=train_images, train_images_index=train_images_index,
                            test_images=test_images, test_images_index=test_images_index,
                            validation_predictions=validation_predictions, test_predictions=test_predictions,
                            reviewed=reviewed, every_test_photo=True)
    shown = method_evidence(method, found, any_method=True, **files)
    validation_answers = found.answers["validation"]
    first = np.array([row[0] for row in validation_answers])
    known = first != NEW_WHALE
    validation = (shown.evidence["validation"].score[known, 0],
                  first[known] == np.asarray(found.queries["validation"].ids)[known])
    accept = (auto_accept(*validation, precision) if fold_answers is None else
              checked_on_validation(fold_auto_accept(*fold_answers, precision), *validation))
    decided = set(read_reviewed(reviewed)["image"])
    queue, squares = review_queries(found, shown, chosen_threshold(threshold_curve), accept.threshold, decided,
                                    read_encounters(encounters, found.queries["test"].names))
    if new_individuals is not None:
        queue = with_proposals(queue, read_proposed(new_individuals))
    catalogue_ids = sorted(set(shown.catalogues["test"].ids) - {NEW_WHALE})
    sources = original_photos(squares, manifest, photo_folders or {}, added_photos) if manifest else squares
    thumbnails_out = Path(page_out).parent / "thumbnails" if thumbnails_out is None else thumbnails_out
    photos = write_page_photos(sources, thumbnails_out, page_out, long_side=thumbnail_side, n_jobs=n_jobs)
    write_text(render_review_page(queue, photos=photos, run=run, method=method, score_name=shown.score_name,
                                  auto_accept=accept, known_ids=catalogue_ids), page_out)
    # a row for each photo: an encounter's photos share their query's position
    rows = [(position, image, q.candidates[0].id, q.candidates[0].score, q.accepted)
            for position, q in enumerate(queue) for image in (q.image, *q.others)]
    write_csv(pd.DataFrame(rows, columns=["position", "image", "answer", "score", "accepted"]), queue_out)
    accepted = sum(row[4] for row in rows)
    write_csv(pd.DataFrame([{"method": method, "precision": precision, "threshold": accept.threshold,
                             "chosen_on": accept.chosen_on, "chosen_precision": accept.chosen_precision,
                             "chosen_accepted": accept.chosen_accepted, "chosen_answers": accept.chosen_answers,
                             "lower_bound": accept.lower_bound, "validation_precision": accept.validation_precision,
                             "validation_accepted": accept.validation_accepted,
                             "validation_queries": accept.validation_queries, "test_photos": len(rows),
                             "test_accepted": accepted, "to_review": len(rows) - accepted,
                             "decided_before": len(decided)}]), auto_accept_out)
    return accept
