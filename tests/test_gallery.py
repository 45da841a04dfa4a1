"""The candidate gallery: the right catalogue photos, in the right order, marked right, and pages
a browser shows whole without fetching anything."""

from __future__ import annotations

import base64
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from test_local import MANY_INLIERS, MATCHING, SETTINGS, view

from whaleid.methods.local.keypoints import feature_rows
from whaleid.review.evidence import (
    EmbeddingFiles,
    KeypointFiles,
    Photos,
    confidence,
    embedding_evidence,
    keypoint_evidence,
    match_answers,
    with_truths,
)
from whaleid.review.gallery import (
    NOT_ANSWERED,
    best_hits,
    query_table,
    render_page,
    truth_rank,
    worst_misses,
    write_galleries,
)
from whaleid.review.pictures import LINE_COLOUR, match_image, thumbnail_uri

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian package `chromium`): "
                                                             "the pages cannot be checked in a browser")


def at(*degrees: float) -> np.ndarray:
    """Unit embeddings at these angles, so that similarities are cosines of their differences."""
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def squares(n: int, side: int = 40) -> list[np.ndarray]:
    return [np.full((side, side), 10 * i, np.uint8) for i in range(n)]


class Gallery(HTMLParser):
    """The queries of a gallery page (or the review page), each with its candidates and truth
    tile (attributes, as a browser reads them), and every image."""

    def __init__(self, text: str):
        super().__init__()
        self.body: dict = {}
        self.queries: list[dict] = []
        self.images: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "body":
            self.body = attributes
        elif tag == "section" and "query" in classes:
            self.queries.append({**attributes, "candidates": [], "truth": None})
        elif tag == "figure" and "candidate" in classes:
            self.queries[-1]["candidates"].append(attributes)
        elif tag == "figure" and "truth" in classes:
            self.queries[-1]["truth"] = attributes
        elif tag == "img":
            self.images.append(attributes)


def assert_self_contained(text: str) -> None:
    lowered = text.lower()
    for outside in ('src="http', "src='http", "<script", "<link", "url(", "@import", "//fonts"):
        assert outside not in lowered, outside


def assert_truth_marked(page: Gallery) -> None:
    for query in page.queries:
        marked = [c for c in query["candidates"] if c["data-correct"] == "true"]
        assert [c["data-id"] for c in marked] == [query["data-truth"]] * len(marked)
        answers = [c["data-id"] for c in query["candidates"]]
        assert len(marked) == answers.count(query["data-truth"])
        rank = int(query["data-truth-rank"])
        assert rank == (answers.index(query["data-truth"]) + 1 if marked else NOT_ANSWERED)


# --- matching answers to catalogue photos ---------------------------------------------------

def test_each_answer_is_shown_by_its_individuals_photo_most_similar_to_the_query():
    catalogue = at(0, 40, 90, 180, 5)
    ids = ["A", "A", "B", "C", "new_whale"]
    queries = at(30, 100)
    answers = [["A", "B", "new_whale", "C", "Z"], ["B", "C", "A", "new_whale", "Z"]]
    photo, score, best_known = match_answers(queries, answers, catalogue, ids)
    assert photo.tolist() == [[1, 2, -1, 3, -1], [2, 3, 1, -1, -1]]  # new_whale, and Z without a photo: none
    expected = np.cos(np.radians([[10, 60, np.nan, 150, np.nan], [10, 80, 60, np.nan, np.nan]]))
    np.testing.assert_allclose(score, expected, atol=1e-6)
    # the new_whale photo at 5 degrees is nobody's: the best known for the first query is A at 40
    np.testing.assert_allclose(best_known, np.cos(np.radians([10, 10])), atol=1e-6)
    # compared a query at a time, the same (and embeddings of any length are normalised first)
    again = match_answers(3 * queries, answers, 0.5 * catalogue, ids, block_size=1)
    for got, want in zip(again, (photo, score, best_known)):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_matching_refuses_embeddings_of_another_model():
    with pytest.raises(ValueError, match="same model"):
        match_answers(np.ones((1, 3)), [["A"]], np.ones((2, 2)), ["A", "B"])
    with pytest.raises(ValueError, match="2 catalogue ids for 3"):
        match_answers(at(0), [["A"]], at(0, 1, 2), ["A", "B"])


def test_truth_rank_and_confidence():
    assert truth_rank(["A", "B", "new_whale", "C", "D"], "new_whale") == 3
    assert truth_rank(["A", "B", "new_whale", "C", "D"], "E") == NOT_ANSWERED == 6
    assert confidence("A", 0.9, 0.9, 0.6) == pytest.approx(0.3)
    assert confidence("new_whale", math.nan, 0.4, 0.6) == pytest.approx(0.2)  # the best known is far below


# --- choosing the queries -----------------------------------------------------------------

def made_up_table() -> pd.DataFrame:
    rows = [("hit_low", 1, 0.1), ("hit_high", 1, 0.5), ("hit_unknown", 1, math.nan), ("second", 2, 0.4),
            ("fifth", 5, 0.05), ("absent_sure", 6, 0.3), ("absent_unsure", 6, 0.01), ("fifth_sure", 5, 0.2),
            ("hit_tie_b", 1, 0.1)]
    return pd.DataFrame([{"image": image, "split": "validation", "truth_rank": rank, "confidence": c}
                         for image, rank, c in rows])


def test_best_hits_are_right_at_rank_1_most_confident_first():
    table = made_up_table()
    assert best_hits(table, 10)["image"].tolist() == ["hit_high", "hit_low", "hit_tie_b", "hit_unknown"]
    assert best_hits(table, 2)["image"].tolist() == ["hit_high", "hit_low"]


def test_worst_misses_have_the_truth_absent_or_lowest_then_the_most_confident_first():
    table = made_up_table()
    assert worst_misses(table, 10)["image"].tolist() == ["absent_sure", "absent_unsure", "fifth_sure", "fifth",
                                                          "second"]
    assert worst_misses(table, 1)["image"].tolist() == ["absent_sure"]
    assert worst_misses(table[table["truth_rank"] == 1], 3).empty


# --- the page ---------------------------------------------------------------------------

def test_thumbnails_are_small_pngs_never_enlarged():
    for shape, expected in [((300, 300), (128, 128)), ((200, 100), (128, 64)), ((50, 50), (50, 50))]:
        uri = thumbnail_uri(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
        assert uri.startswith("data:image/png;base64,")
        png = np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8)
        assert cv2.imdecode(png, cv2.IMREAD_UNCHANGED).shape == expected


def tricky_page(page: str = "worst_misses") -> str:
    """A page whose ids and image names hold HTML's special characters."""
    odd = 'w_<b>"&\'x'
    catalogue = Photos(["c<0>.jpg", "c1.jpg", "c2.jpg", "c3.jpg", "c4.jpg"], [odd, "B", "C", "D", "E"], squares(5))
    queries = Photos(['q"1.jpg', "q2.jpg"], [odd, "B"], squares(2))
    truths, answers = [odd, "new_whale"], [["B", odd, "C", "new_whale", "D"], ["B", "C", "D", "E", odd]]
    evidence = embedding_evidence(at(10, 20), with_truths(answers, truths), at(0, 90, 180, 270, 45), catalogue.ids)
    table = query_table(queries, "validation", truths, answers, evidence, 0.5)
    selected = worst_misses(table, 5) if page == "worst_misses" else best_hits(table, 5)
    return render_page(page, selected, {"validation": queries}, {"validation": catalogue}, 0.5,
                       counts={"validation": 2})


def test_a_page_shows_each_query_with_its_five_answers_in_order_and_marks_the_truth():
    text = tricky_page()
    page = Gallery(text)
    assert page.body["data-page"] == "worst_misses" and page.body["data-threshold"] == "0.5"
    # q2.jpg's truth (new_whale) is not among its answers: it comes first
    assert [(q["data-image"], q["data-truth"], q["data-truth-rank"]) for q in page.queries] == [
        ("q2.jpg", "new_whale", "6"), ('q"1.jpg', 'w_<b>"&\'x', "2")]
    first, second = page.queries
    assert [c["data-id"] for c in second["candidates"]] == ["B", 'w_<b>"&\'x', "C", "new_whale", "D"]
    assert [c["data-rank"] for c in second["candidates"]] == ["1", "2", "3", "4", "5"]
    assert [c["data-correct"] for c in second["candidates"]] == ["false", "true", "false", "false", "false"]
    assert [c.get("data-photo") for c in second["candidates"]] == ["c1.jpg", "c<0>.jpg", "c2.jpg", None, "c3.jpg"]
    scores = [c["data-score"] for c in second["candidates"]]
    assert scores[3] == "" and second["candidates"][3]["data-threshold"] == "0.5"
    np.testing.assert_allclose([float(s) for s in scores[:3] + scores[4:]],
                               np.cos(np.radians([80, 10, 170, 260])), atol=1e-3)
    assert not any(c["data-correct"] == "true" for c in first["candidates"])
    assert first["truth"] is None  # new_whale has no catalogue photo to show
    assert_truth_marked(page)
    # one image per query and per answer with a photo: new_whale is a placeholder
    assert len(page.images) == 2 + 4 + 5 and all(i["src"].startswith("data:image/png;base64,") for i in page.images)


def test_text_is_escaped_and_the_page_is_self_contained():
    text = tricky_page()
    assert 'w_<b>"' not in text and "c<0>" not in text and 'q"1' not in text
    assert "w_&lt;b&gt;&quot;&amp;&#x27;x" in text
    assert_self_contained(text)
    assert_self_contained(tricky_page("best_hits"))


def test_an_empty_selection_still_makes_a_page():
    nothing = embedding_evidence(np.zeros((0, 2), np.float32), [], at(0), ["A"])
    text = render_page("best_hits", query_table(Photos([], [], []), "validation", [], [], nothing, 0.5), {}, {}, 0.5)
    assert Gallery(text).queries == [] and "No query to show" in text


# --- from the workflow's files ------------------------------------------------------------

TRAIN = [  # image, id, subset, truth, angle
    ("a1.jpg", "A", "fit", "A", 0), ("a2.jpg", "A", "fit", "A", 40), ("b1.jpg", "B", "fit", "B", 90),
    ("c1.jpg", "C", "fit", "C", 180), ("d1.jpg", "D", "fit", "D", 270), ("n1.jpg", "new_whale", "fit", "new_whale", 8),
    ("a3.jpg", "A", "validation", "A", 10), ("g1.jpg", "G", "validation", "new_whale", 200),
]
TEST = [("t1.jpg", "B", 85), ("t2.jpg", "E", 0), ("t3.jpg", "A", 12), ("t4.jpg", "C", 300)]  # t4: no truth
ADDED = [("e1.jpg", "E", 355)]


@pytest.fixture
def results(tmp_path):
    return made_up_run(tmp_path)


def made_up_run(tmp_path: Path) -> Path:
    """The files rule report_gallery reads, where the workflow writes them, made up: embeddings
    at known angles."""
    r = tmp_path / "results"
    for folder in ("metric_learning/embeddings", "metric_learning/predictions", "metric_learning/additions",
                   "validation", "preprocess"):
        (r / folder).mkdir(parents=True)
    train = pd.DataFrame(TRAIN, columns=["image", "id", "subset", "truth", "angle"])
    train[["image", "id", "subset", "truth"]].to_csv(r / "validation" / "split.csv", index=False)
    # the preprocess index and the embeddings' in the same (sorted) order; split.csv's differs
    order = train.sort_values("image")
    test = pd.DataFrame(TEST, columns=["image", "id", "angle"])
    for split, table in (("train", order), ("test", test)):
        table[["image"]].assign(id="").to_csv(r / "metric_learning" / "embeddings" / f"{split}.csv", index=False)
        table[["image"]].assign(id="").to_csv(r / "preprocess" / f"{split}.csv", index=False)
        np.save(r / "metric_learning" / "embeddings" / f"{split}.npy", at(*table["angle"]))
        np.save(r / "preprocess" / f"{split}.npy", np.stack(squares(len(table), 64)))
    added = pd.DataFrame(ADDED, columns=["image", "id", "angle"])
    added[["image", "id"]].to_csv(r / "metric_learning" / "additions" / "index.csv", index=False)
    np.save(r / "metric_learning" / "additions" / "embeddings.npy", at(*added["angle"]))
    np.save(r / "metric_learning" / "additions" / "squares.npy", np.stack(squares(1, 64)))
    test[test["image"] != "t4.jpg"].rename(columns={"image": "Image", "id": "Id"})[["Image", "Id"]].to_csv(
        tmp_path / "test_truth.csv", index=False)
    pd.DataFrame({"Image": ["a3.jpg", "g1.jpg"], "Id": ["A B new_whale C D", "C D new_whale A B"]}).to_csv(
        r / "metric_learning" / "predictions" / "validation.csv", index=False)
    pd.DataFrame({"Image": ["t1.jpg", "t2.jpg", "t3.jpg", "t4.jpg"],
                  "Id": ["B A C D new_whale", "A new_whale B C D", "A B C D new_whale", "D C B A new_whale"]}).to_csv(
        r / "metric_learning" / "predictions" / "test.csv", index=False)
    pd.DataFrame({"max_distance": [0, 0], "threshold": [0.4, 0.5], "map5": [0.1, 0.2],
                  "chosen": [False, True]}).to_csv(r / "metric_learning" / "new_whale_threshold.csv", index=False)
    return r


def make_galleries(r: Path, *, size: int = 12, test_truth: bool = True,
                   additions: bool = True) -> tuple[Gallery, Gallery]:
    out = r / "report" / "gallery"
    method = r / "metric_learning"  # where the method writes what the gallery shows
    counts = write_galleries(
        method="metric_learning",
        embeddings=EmbeddingFiles(method / "embeddings/train.npy", method / "embeddings/train.csv",
                                  method / "embeddings/test.npy", method / "embeddings/test.csv",
                                  (method / "additions/embeddings.npy", method / "additions/index.csv",
                                   method / "additions/squares.npy") if additions else None),
        split_csv=r / "validation/split.csv", validation_predictions=method / "predictions/validation.csv",
        test_predictions=method / "predictions/test.csv", threshold_curve=method / "new_whale_threshold.csv",
        train_images=r / "preprocess/train.npy", train_images_index=r / "preprocess/train.csv",
        test_images=r / "preprocess/test.npy", test_images_index=r / "preprocess/test.csv",
        test_truth=r.parent / "test_truth.csv" if test_truth else None,
        best_hits_out=out / "best.html", worst_misses_out=out / "worst.html", size=size)
    assert counts == ({"validation": 2, "test": 3} if test_truth else {"validation": 2})
    return Gallery((out / "best.html").read_text()), Gallery((out / "worst.html").read_text())


def candidates(query: dict) -> list[tuple[str, str | None]]:
    return [(c["data-id"], c.get("data-photo")) for c in query["candidates"]]


def test_galleries_from_the_workflows_files(results):
    best, worst = make_galleries(results)
    # hits, by similarity past the 0.5 threshold: t3 (2 degrees from a3), t1 (5 from b1), a3 (10 from a1)
    assert [q["data-image"] for q in best.queries] == ["t3.jpg", "t1.jpg", "a3.jpg"]
    assert [q["data-split"] for q in best.queries] == ["test", "test", "validation"]
    t3, t1, a3 = best.queries
    # validation photos are answered from the fit photos: a3 itself (1.0) is not its own match,
    # and the new_whale photo n1 (2 degrees away) stands for no one
    assert candidates(a3) == [("A", "a1.jpg"), ("B", "b1.jpg"), ("new_whale", None), ("C", "c1.jpg"),
                              ("D", "d1.jpg")]
    # test photos from all of train, validation photos included
    assert candidates(t3)[0] == ("A", "a3.jpg")
    assert candidates(t1)[:2] == [("B", "b1.jpg"), ("A", "a2.jpg")]
    assert float(t3["candidates"][0]["data-score"]) == pytest.approx(math.cos(math.radians(2)), abs=1e-3)
    # misses: t2's truth E (only among the added photos) is not answered, g1's (new_whale) is third
    assert [(q["data-image"], q["data-truth"], q["data-truth-rank"]) for q in worst.queries] == [
        ("t2.jpg", "E", "6"), ("g1.jpg", "new_whale", "3")]
    t2, g1 = worst.queries
    assert t2["truth"]["data-photo"] == "e1.jpg"
    assert float(t2["truth"]["data-score"]) == pytest.approx(math.cos(math.radians(5)), abs=1e-3)
    assert [c["data-correct"] for c in g1["candidates"]] == ["false", "false", "true", "false", "false"]
    for page in (best, worst):
        assert_truth_marked(page)
        assert all(len(q["candidates"]) == 5 for q in page.queries)
    assert all(q["data-image"] != "t4.jpg" for q in best.queries + worst.queries)  # no truth: not shown


def test_galleries_without_test_truth_show_validation_only_and_keep_to_their_size(results):
    best, worst = make_galleries(results, test_truth=False, additions=False)
    assert [q["data-image"] for q in best.queries + worst.queries] == ["a3.jpg", "g1.jpg"]
    best, worst = make_galleries(results, size=1)
    assert [q["data-image"] for q in best.queries + worst.queries] == ["t3.jpg", "t2.jpg"]


# --- the methods that verify keypoints ------------------------------------------------------

def test_keypoint_evidence_shows_the_likeliest_verified_photo_with_the_individuals_score():
    pairs = pd.DataFrame([("q1", "A", "a1.jpg", 30, 0.8), ("q1", "A", "a2.jpg", 10, 0.9), ("q1", "B", "b1.jpg", 3, 0.1),
                          ("q2", "B", "b1.jpg", 2, 0.05)],
                         columns=["image", "id", "photo", "inliers", "probability"])
    scores = pd.DataFrame([("q1", 0, "A", 0.97), ("q1", 1, "B", 0.1), ("q2", 0, "B", 0.04)],
                          columns=["image", "rank", "id", "probability"])
    names = ["a1.jpg", "a2.jpg", "b1.jpg", "c1.jpg"]
    answers = [["A", "new_whale", "B", "C"], ["new_whale", "B", "C", "A"]]
    evidence = keypoint_evidence(["q1", "q2"], answers, names, pairs, scores, "probability")
    # a2 is the likelier photo of A, though a1 has more inliers; C and new_whale were not verified
    assert evidence.photo.tolist() == [[1, -1, 2, -1], [-1, 2, -1, -1]]
    assert evidence.verified.tolist() == [[True, False, True, False], [False, True, False, False]]
    np.testing.assert_allclose(evidence.score, [[0.97, np.nan, 0.1, np.nan], [np.nan, 0.04, np.nan, np.nan]])
    np.testing.assert_allclose(evidence.best_known, [0.97, 0.04])
    # scored by inliers (no probability): the photo with most inliers
    by_inliers = keypoint_evidence(["q1"], [["A"]], names, pairs.drop(columns="probability"),
                                   scores.assign(score=[30, 3, 2]), "score")
    assert by_inliers.photo.tolist() == [[0]] and by_inliers.score.tolist() == [[30]]
    with pytest.raises(ValueError, match="not in the catalogue"):
        keypoint_evidence(["q1"], [["A"]], names[:2], pairs, scores, "probability")  # b1 missing


def test_inlier_matches_are_drawn_from_the_query_to_the_photo():
    side, gap = 100, 6
    query, photo = np.zeros((50, 50), np.uint8), np.full((200, 200), 255, np.uint8)
    image = match_image(query, photo, np.array([[0.2, 0.3, 0.7, 0.6]]), side=side, gap=gap)
    assert image.shape == (side, 2 * side + gap, 3)
    assert (image[80, 10] == 0).all() and (image[10, side + gap + 10] == 255).all()  # each photo in its place
    # the line's ends, and a point halfway, in the line colour
    for x, y in [(20, 30), (side + gap + 70, 60), ((20 + side + gap + 70) // 2, 45)]:
        assert np.abs(image[y, x].astype(int) - LINE_COLOUR).max() < 60, (x, y, image[y, x])


LOCAL_TRAIN = [  # image, id, subset, truth, seed of the pattern, view: degrees, scale, shift
    ("a1.jpg", "A", "fit", "A", 101, (0, 1.0, (0, 0))), ("a2.jpg", "A", "fit", "A", 101, (8, 0.9, (10, 5))),
    ("b1.jpg", "B", "fit", "B", 102, (0, 1.0, (0, 0))), ("c1.jpg", "C", "fit", "C", 103, (0, 1.0, (0, 0))),
    ("d1.jpg", "D", "fit", "D", 104, (0, 1.0, (0, 0))),
    ("a3.jpg", "A", "validation", "A", 101, (-6, 1.1, (-5, 4))),
]


@pytest.fixture
def local_results(tmp_path):
    """The files a local or fused gallery reads: real keypoints of synthetic patterns (A's
    three photos show one pattern), made-up verified pairs and scores."""
    r = tmp_path / "results"
    for folder in ("validation", "preprocess", "local/keypoints", "local/pairs", "local/shortlists",
                   "local/predictions", "metric_learning/embeddings"):
        (r / folder).mkdir(parents=True)
    train = pd.DataFrame([row[:4] for row in LOCAL_TRAIN], columns=["image", "id", "subset", "truth"])
    train.to_csv(r / "validation" / "split.csv", index=False)
    photos = {"train": [view(seed, d, s, shift) for *_, seed, (d, s, shift) in LOCAL_TRAIN],
              "test": [view(101, 4, 0.95, (3, -6)), view(105)]}
    names = {"train": train["image"].tolist(), "test": ["t1.jpg", "t2.jpg"]}
    angles = {"train": [0, 10, 90, 180, 270, 5], "test": [3, 120]}
    for split in ("train", "test"):
        index = pd.DataFrame({"image": names[split], "id": ""})
        for folder in ("preprocess", "local/keypoints", "metric_learning/embeddings"):
            index.to_csv(r / folder / f"{split}.csv", index=False)
        np.save(r / "preprocess" / f"{split}.npy", np.stack(photos[split]))
        np.save(r / "local" / "keypoints" / f"{split}.npy", feature_rows(np.stack(photos[split]), SETTINGS))
        np.save(r / "metric_learning" / "embeddings" / f"{split}.npy", at(*angles[split]))
    pd.DataFrame({"Image": ["t1.jpg", "t2.jpg"], "Id": ["A", "E"]}).to_csv(tmp_path / "test_truth.csv", index=False)
    columns = ["image", "id", "photo", "inliers", "probability"]
    pd.DataFrame([("a3.jpg", "A", "a1.jpg", 50, 0.9), ("a3.jpg", "A", "a2.jpg", 40, 0.9995),
                  ("a3.jpg", "B", "b1.jpg", 3, 0.01)], columns=columns).to_csv(r / "local/pairs/validation.csv",
                                                                               index=False)
    pd.DataFrame([("t1.jpg", "A", "a3.jpg", 50, 0.99), ("t2.jpg", "C", "c1.jpg", 3, 0.02)],
                 columns=columns).to_csv(r / "local/pairs/test.csv", index=False)
    columns = ["image", "rank", "id", "probability"]
    pd.DataFrame([("a3.jpg", 0, "A", 0.9995), ("a3.jpg", 1, "B", 0.01)], columns=columns).to_csv(
        r / "local/shortlists/validation.csv", index=False)
    pd.DataFrame([("t1.jpg", 0, "A", 0.99), ("t2.jpg", 0, "C", 0.02)], columns=columns).to_csv(
        r / "local/shortlists/test.csv", index=False)
    pd.DataFrame({"Image": ["a3.jpg"], "Id": ["A new_whale B C D"]}).to_csv(r / "local/predictions/validation.csv",
                                                                         index=False)
    pd.DataFrame({"Image": ["t1.jpg", "t2.jpg"], "Id": ["A new_whale B C D", "new_whale C D A B"]}).to_csv(
        r / "local/predictions/test.csv", index=False)
    pd.DataFrame({"threshold": [0.3], "chosen": [True]}).to_csv(r / "local/new_whale_threshold.csv", index=False)
    return r


def make_keypoint_galleries(r: Path, method: str, **more) -> tuple[Gallery, Gallery, str]:
    out = r / "report" / "gallery"
    keypoints = r / "local" / "keypoints"
    counts = write_galleries(
        method=method, split_csv=r / "validation/split.csv",
        validation_predictions=r / "local/predictions/validation.csv",
        test_predictions=r / "local/predictions/test.csv",
        threshold_curve=r / "local/new_whale_threshold.csv", train_images=r / "preprocess/train.npy",
        train_images_index=r / "preprocess/train.csv", test_images=r / "preprocess/test.npy",
        test_images_index=r / "preprocess/test.csv", test_truth=r.parent / "test_truth.csv",
        keypoints=KeypointFiles(keypoints / "train.npy", keypoints / "train.csv", keypoints / "test.npy",
                                keypoints / "test.csv", SETTINGS.image_size, MATCHING),
        embeddings=EmbeddingFiles(*(r / "metric_learning" / "embeddings" / name
                                    for name in ("train.npy", "train.csv", "test.npy", "test.csv"))),
        pairs={split: r / "local/pairs" / f"{split}.csv" for split in ("validation", "test")},
        scores={split: r / "local/shortlists" / f"{split}.csv" for split in ("validation", "test")},
        best_hits_out=out / f"{method}_best.html", worst_misses_out=out / f"{method}_worst.html", size=12, **more)
    assert counts == {"validation": 1, "test": 2}
    text = (out / f"{method}_best.html").read_text()
    return Gallery(text), Gallery((out / f"{method}_worst.html").read_text()), text


def test_a_local_gallery_draws_each_verified_answer_with_its_inliers(local_results):
    best, worst, text = make_keypoint_galleries(local_results, "local")
    assert best.body["data-score"] == "probability"
    assert [q["data-image"] for q in best.queries] == ["a3.jpg", "t1.jpg"]  # 0.9995, then 0.99
    a3 = best.queries[0]["candidates"]
    assert [(c["data-id"], c.get("data-photo")) for c in a3] == [
        ("A", "a2.jpg"), ("new_whale", None), ("B", "b1.jpg"), ("C", "c1.jpg"), ("D", "d1.jpg")]
    # verified photos beside the query with their inliers: many for the same pattern, few for another
    assert "matched" in a3[0]["class"] and int(a3[0]["data-inliers"]) >= MANY_INLIERS
    assert "matched" in a3[2]["class"] and int(a3[2]["data-inliers"]) < MANY_INLIERS
    # C and D were not verified: shown by one of their photos, no lines
    assert "matched" not in a3[3]["class"] and "data-inliers" not in a3[3]
    assert "no keypoint match: one of its photos" in text and "&gt; 0.999" in text
    assert float(a3[0]["data-score"]) == pytest.approx(0.9995)
    # t2's truth E is in no catalogue: not answered, no truth photo
    assert [(q["data-image"], q["data-truth-rank"]) for q in worst.queries] == [("t2.jpg", "6")]
    assert worst.queries[0]["truth"] is None
    for page in (best, worst):
        assert_truth_marked(page)


def test_a_fused_gallery_shows_unverified_answers_by_the_embeddings_most_similar_photo(local_results):
    # the local method's answers and scores stand in for the fused method's here
    best, worst, text = make_keypoint_galleries(local_results, "fused")
    a3 = best.queries[0]["candidates"]
    assert a3[0]["data-photo"] == "a2.jpg" and "matched" in a3[0]["class"]
    # t2 (at 120 degrees) verified no photo of A: shown by the most similar, a2 (10 degrees),
    # where the local gallery shows A's first photo
    t2 = {c["data-id"]: c for c in worst.queries[0]["candidates"]}
    assert t2["A"]["data-photo"] == "a2.jpg" and "matched" not in t2["A"]["class"]
    assert "no keypoint match: the embedding&#x27;s most similar photo" in text
    _, local_worst, _ = make_keypoint_galleries(local_results, "local")
    assert {c["data-id"]: c for c in local_worst.queries[0]["candidates"]}["A"]["data-photo"] == "a1.jpg"


def test_an_answer_verified_by_a_photo_self_training_labelled_is_shown_by_that_photo(local_results):
    """Self-training accepted t1 as A, and t2 matched t1: A's evidence for t2 is t1, drawn from
    the test keypoints."""
    r = local_results
    pairs = pd.read_csv(r / "local/pairs/test.csv")
    pd.concat([pairs, pd.DataFrame([("t2.jpg", "A", "t1.jpg", 9, 0.3)], columns=pairs.columns)]).to_csv(
        r / "local/pairs/test.csv", index=False)
    pd.DataFrame([("test", "t1.jpg", "A", 0.99, 1)], columns=["split", "image", "id", "probability", "round"]).to_csv(
        r / "local/pseudo_labels.csv", index=False)
    _, worst, _ = make_keypoint_galleries(r, "local", pseudo_labels=r / "local/pseudo_labels.csv")
    t2 = {c["data-id"]: c for c in worst.queries[0]["candidates"]}
    assert t2["A"]["data-photo"] == "t1.jpg" and "matched" in t2["A"]["class"]
    # without the labels, a pair with a photo in no catalogue is refused by name
    with pytest.raises(ValueError, match="not in the catalogue, e.g. \\['t1.jpg'\\]"):
        make_keypoint_galleries(r, "local")


# --- in a browser -------------------------------------------------------------------------

PROBE = """<script>
window.addEventListener("load", function () {
  for (const image of document.images) {
    image.setAttribute("data-loaded", String(image.complete && image.naturalWidth > 0));
  }
  document.body.setAttribute("data-probed", "true");
});
</script>
"""


def browser_dom(page: Path, folder: Path) -> Gallery:
    """`page` as headless Chromium leaves it once loaded: each image marked data-loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    probed = folder / f"probed_{page.name}"
    text = page.read_text()
    assert text.count("</body>") == 1
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             f"--user-data-dir={folder / 'chromium'}", "--virtual-time-budget=10000",
                             "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    dom = Gallery(result.stdout)
    assert dom.body.get("data-probed") == "true", result.stdout[:2000]
    return dom


def assert_shown_whole(page: Path, folder: Path) -> Gallery:
    dom = browser_dom(page, folder)
    assert dom.images, "no image on the page"
    not_loaded = [image.get("alt") for image in dom.images if image.get("data-loaded") != "true"]
    assert not not_loaded, f"{len(not_loaded)} of {len(dom.images)} images did not load, e.g. {not_loaded[:3]}"
    assert_truth_marked(dom)
    return dom


@needs_chromium
def test_a_browser_shows_every_image_and_the_marks(results, tmp_path):
    make_galleries(results)
    for name, images in (("best.html", 3 * 5), ("worst.html", 2 + 4 + 4 + 1)):
        dom = assert_shown_whole(results / "report" / "gallery" / name, tmp_path / "browser")
        assert len(dom.images) == images
        assert any(c["data-correct"] == "true" for q in dom.queries for c in q["candidates"])


# --- end to end ---------------------------------------------------------------------------

@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("method", ["metric_learning", "local", "fused"])
def test_the_workflow_makes_the_gallery_pages(tiny_run, tmp_path, method):
    data, work, results = tiny_run["data"], tiny_run["work"], tiny_run["results"]
    pages = {page: f"results/report/gallery/{method}_{page}.html" for page in ("best_hits", "worst_misses")}
    assert (results / "logs" / "report_gallery" / f"{method}.log").is_file()
    assert (results / "benchmarks" / "report_gallery" / f"{method}.tsv").is_file()
    split = pd.read_csv(results / "validation" / "split.csv", dtype=str, keep_default_na=False)
    truth = {**dict(zip(split["image"], split["truth"])),
             **pd.read_csv(data / "test_truth.csv", dtype=str).set_index("Image")["Id"].to_dict()}
    fit = set(split.loc[split["subset"] == "fit", "image"])
    shown, matched = [], []
    for page, path in pages.items():
        text = (work / path).read_text()
        assert_self_contained(text)
        # one page of each method in the browser: the other is built by the same code
        dom = assert_shown_whole(work / path, tmp_path / "browser") if page == "best_hits" else Gallery(text)
        assert dom.body["data-score"] == ("similarity" if method == "metric_learning" else "probability")
        assert 1 <= len(dom.queries) <= tiny_run["config"]["report"]["gallery_size"]
        for query in dom.queries:
            assert query["data-truth"] == truth[query["data-image"]]
            assert (query["data-truth-rank"] == "1") == (page == "best_hits")
            if query["data-split"] == "validation":
                assert {c["data-photo"] for c in query["candidates"] if "data-photo" in c} <= fit
            matched += [int(c["data-inliers"]) for c in query["candidates"] if "data-inliers" in c]
        shown += [q["data-image"] for q in dom.queries]
    assert len(shown) == len(set(shown))
    # the methods that verify keypoints draw the inliers of the photos they verified
    if method == "metric_learning":
        assert not matched
    else:
        assert matched and max(matched) > 0
