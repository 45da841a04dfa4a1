"""The review page: what it shows and says, that it fetches nothing from the network, its
thumbnails of the photos themselves and where the inlier lines land in them, and, in a real
browser, that a person's keys decide the photos, that the decisions survive a reload and export as
decisions.csv, and that a key shows a pair at full resolution."""

from __future__ import annotations

import csv
import json
import math
import re
import struct
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from browser import CHROMIUM_SKIP, SKIP_REASON, open_browser, screenshot

# the query sections, their candidates and every image, as a browser reads a page; a made-up run
from test_gallery import TEST as GALLERY_TEST
from test_gallery import TRAIN as GALLERY_TRAIN
from test_gallery import Gallery, made_up_run

from whaleid.data.images import BadImage, read_gray, square_image
from whaleid.identification.auto_accept import ON_FIT_FOLDS, ON_VALIDATION, AutoAccept
from whaleid.methods.local.keypoints import extract_features, extract_photo_features, photo_at_max_side
from whaleid.review.decisions import new_individual_id
from whaleid.review.evidence import EmbeddingFiles
from whaleid.review.html import format_score
from whaleid.review.pictures import Original, in_photo_frame, thumbnail_file, write_thumbnails
from whaleid.review.review_page import (
    EXPORTED_COLUMNS,
    PagePhoto,
    ReviewCandidate,
    ReviewQuery,
    auto_accept_statement,
    original_photos,
    render_review_page,
    storage_key,
    with_proposals,
    write_page_photos,
    write_review,
)
from whaleid.settings import KeypointSettings
from whaleid.vocabulary import NEW_WHALE

# An image name with every character that HTML, a script or a CSV could stumble on.
ODD = 'o,dd "x" <&>.jpg'
KNOWN = [f"w_{i}" for i in range(1, 10)]


def candidate(individual: str, score: float, *, photo: bool = True, inliers: int | None = None) -> ReviewCandidate:
    if individual == NEW_WHALE or not photo:
        return ReviewCandidate(individual, score, None)
    # a verified photo is drawn beside the query, its inlier matches as lines
    lines = None if inliers is None else tuple((0.1 + i / 20, 0.5, 0.2 + i / 20, 0.4) for i in range(inliers))
    return ReviewCandidate(individual, score, f"{individual}_photo.jpg", lines)


def query(image: str, answers: list[str], confidence: float, accepted: bool = False) -> ReviewQuery:
    scores = [confidence, 0.1, 0.02, 0.0004, float("nan")]
    candidates = [candidate(individual, score, inliers=12 if rank == 0 else None, photo=individual != "w_5")
                  for rank, (individual, score) in enumerate(zip(answers, scores))]
    return ReviewQuery(image, candidates, confidence, accepted)


def shown_photos(queries) -> list[str]:
    """The names of every photo the queries show."""
    return sorted({image for q in queries for image in (q.image, *q.others)}
                  | {c.photo for q in queries for c in q.candidates if c.photo})


def frame(i: int) -> tuple[int, int]:
    """The width and height of the i-th made-up photo: landscape and portrait in turn."""
    return (600, 400) if i % 2 == 0 else (300, 450)


def pictures(queries) -> dict[str, PagePhoto]:
    """Every photo the queries show as the page has it: a thumbnail beside the page, its file
    elsewhere (neither written)."""
    return {name: PagePhoto(f"thumbnails/{thumbnail_file(name)}", *frame(i), Path("/photos", name).as_uri())
            for i, name in enumerate(shown_photos(queries))}


def colour(i: int) -> tuple[int, int, int]:
    """The i-th made-up photo's colour (BGR): each its own."""
    return (40 + 23 * i % 200, 200 - 31 * i % 160, 90 + 57 * i % 150)


def photo_files(queries, folder: Path) -> dict[str, Original]:
    """A photo file of every photo the queries show, in `folder`: each its own colour and frame."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, name in enumerate(shown_photos(queries)):
        width, height = frame(i)
        ok, png = cv2.imencode(".png", np.full((height, width, 3), colour(i), np.uint8))
        (folder / name).write_bytes(png.tobytes())  # a PNG, whatever its name says: OpenCV reads either
        files[name] = Original(folder / name, width, height)
    return files


def written_page(queries, tmp_path: Path, name: str = "review.html", **options) -> Path:
    """The page of `queries` at tmp_path / `name`, its thumbnails beside it made of photo files."""
    page = tmp_path / name
    photos = write_page_photos(photo_files(queries, tmp_path / "photos"), tmp_path / "thumbnails", page,
                               long_side=800)
    page.write_text(render(queries, photos=photos, **options), encoding="utf-8")
    return page


def synthetic_queries() -> list[ReviewQuery]:
    """Six test photos, least sure first, as the caller orders them; e.jpg is auto-accepted and
    f.jpg has new_whale at rank 1."""
    return [query("a.jpg", ["w_1", "w_2", "w_3", NEW_WHALE, "w_5"], 0.2),
            query("b.jpg", ["w_2", "w_1", "w_4", "w_5", NEW_WHALE], 0.3),
            query("c.jpg", ["w_4", "w_1", NEW_WHALE, "w_2", "w_3"], 0.4),
            query(ODD, ["w_2", "w_3", "w_1", "w_4", NEW_WHALE], 0.5),
            query("e.jpg", ["w_3", "w_1", "w_2", NEW_WHALE, "w_4"], 0.9995, accepted=True),
            query("f.jpg", [NEW_WHALE, "w_1", "w_2", "w_3", "w_4"], float("nan"))]


# chosen on the fit photos' out-of-fold answers, checked on validation
AUTO = AutoAccept(precision=0.98, threshold=0.93, chosen_on=ON_FIT_FOLDS, chosen_accepted=400, chosen_answers=900,
                  chosen_precision=0.995, lower_bound=0.9895, validation_accepted=56, validation_queries=70,
                  validation_precision=55 / 56)


def render(queries=None, **options) -> str:
    queries = synthetic_queries() if queries is None else queries
    arguments = {"run": "results", "method": "local", "score_name": "probability", "auto_accept": AUTO,
                 "known_ids": KNOWN, "photos": pictures(queries), **options}
    return render_review_page(queries, **arguments)


# --- the page as written -------------------------------------------------------------------

@pytest.mark.parametrize("image, expected", [("0a1b2c.jpg", "new-0a1b2c"), ("a.b.JPG", "new-a.b"),
                                             ("plain", "new-plain"), (ODD, 'new-o,dd "x" <&>')])
def test_a_new_individual_is_named_after_its_photo(image, expected):
    assert new_individual_id(image) == expected


@pytest.mark.parametrize("value, score_name, expected", [
    (0.93456, "probability", "0.935"), (0.9995, "probability", "> 0.999"), (0.0004, "probability", "< 0.001"),
    (0.999, "probability", "0.999"), (0.81234, "similarity", "0.812"), (0.99995, "similarity", "1.000"),
    (17.0, "inliers", "17"), (1234.5678, "score", "1.23e+03"), (0.012345, "score", "0.0123"),
    (float("nan"), "probability", ""), (None, "inliers", "")])
def test_scores_are_written_as_their_kind_is(value, score_name, expected):
    assert format_score(value, score_name) == expected


def test_an_unknown_kind_of_score_is_refused():
    with pytest.raises(ValueError, match="unknown score 'distance'"):
        format_score(0.5, "distance")
    with pytest.raises(ValueError, match="unknown score"):
        render(score_name="distance")


def test_one_section_per_query_in_the_order_given():
    queries = synthetic_queries()
    page = Gallery(render(queries))
    assert [s["data-image"] for s in page.queries] == [q.image for q in queries]
    assert page.body["data-run"] == "results" and page.body["data-method"] == "local"
    assert page.body["data-storage-key"] == storage_key("results", "local", [q.image for q in queries])
    for section, q in zip(page.queries, queries):
        assert section["data-accepted"] == ("true" if q.accepted else "false")
        assert section["data-new-id"] == new_individual_id(q.image)
        # before any script runs, an auto-accepted photo reads as confirmed by auto
        expected = ("confirmed", q.candidates[0].id, "auto") if q.accepted else ("", "", "")
        assert (section["data-decision"], section["data-decided-id"], section["data-by"]) == expected
        assert [c["data-id"] for c in section["candidates"]] == [c.id for c in q.candidates]
        assert [c["data-rank"] for c in section["candidates"]] == ["1", "2", "3", "4", "5"]
        for figure, answer in zip(section["candidates"], q.candidates):
            assert (figure["data-score"] == "") == math.isnan(answer.score)
            if not math.isnan(answer.score):
                assert float(figure["data-score"]) == pytest.approx(answer.score, rel=1e-5)
            assert figure.get("data-inliers") == (None if answer.inliers is None else str(answer.inliers))
            assert figure.get("data-photo") == answer.photo
    # the query, every candidate with a photo, and beside a verified one the query again; new_whale
    # and w_5 (no photo) are placeholder boxes
    assert len(page.images) == sum(1 + sum((c.photo is not None) + (c.lines is not None) for c in q.candidates)
                                   for q in queries)
    text = render(queries)
    assert text.count('class="placeholder"') == sum(c.photo is None for q in queries for c in q.candidates)
    # every inlier a line between the two photos; every image of a photo shows its thumbnail
    drawn = re.findall(r'<path class="lines" d="([^"]*)"', text)
    assert [d.count("M") for d in drawn] == [c.inliers for q in queries for c in q.candidates if c.lines is not None]
    photos = pictures(queries)
    assert all(image["src"] == photos[image["data-photo-name"]].thumbnail for image in page.images)
    assert all(image["loading"] == "lazy" for image in page.images)
    assert text.count('<span class="badge">auto-accepted</span>') == 1
    assert "rank-1 probability &gt; 0.999" in text
    assert "No photo to review." in render([], auto_accept=None)


def test_an_answer_shown_by_a_photo_self_training_labelled_says_so():
    queries = synthetic_queries()
    through = replace(queries[1].candidates[0], photo="t.jpg", pseudo_round=2)
    queries[1] = replace(queries[1], candidates=[through, *queries[1].candidates[1:]])
    page, text = Gallery(render(queries)), render(queries)
    figures = [figure for section in page.queries for figure in section["candidates"]]
    assert [figure.get("data-pseudo-round") for figure in figures].count("2") == 1
    assert figures[5]["data-pseudo-round"] == "2" and figures[5]["data-photo"] == "t.jpg"
    assert text.count("through a pseudo-label") == 1
    alts = {image.get("alt") for image in page.images}
    assert "the query beside w_2's test photo t.jpg, given this id by self-training, 12 inlier matches" in alts


def test_odd_names_are_escaped_and_read_back_whole():
    odd_id = 'w"<&>\'x'
    queries = [query(ODD, [odd_id, "w_1", NEW_WHALE, "w_2", "w_3"], 0.5)]
    text = render(queries, run='run "1" </script><b>&', known_ids=[odd_id, *KNOWN])
    page = Gallery(text)
    assert page.body["data-run"] == 'run "1" </script><b>&'
    assert page.queries[0]["data-image"] == ODD
    assert page.queries[0]["data-new-id"] == new_individual_id(ODD)
    assert page.queries[0]["data-rank1"] == odd_id
    assert page.queries[0]["candidates"][0]["data-id"] == odd_id
    assert '"x" <&>' not in text and "<b>&" not in text
    # the script and the photos' JSON end once each: no name ends them early
    assert text.count("</script>") == 2
    assert f'<option value="{odd_id}"' not in text and '<option value="w&quot;&lt;&amp;&gt;&#x27;x">' in text


def test_the_auto_accept_statement_gives_the_threshold_and_how_surely_right_it_was():
    statement = auto_accept_statement(AUTO, photos=40, accepted=12, score_name="probability")
    assert statement == ("Auto-accepted: 12 of 40 photos, whose rank-1 probability is at least 0.93: on the fit "
                         "photos' out-of-fold answers (each photo asked against the other folds' photos), rank-1 "
                         "answers at or above it were right 99.5% of the time (398 of 400; at least 99.0% with 90% "
                         "confidence) \N{EM DASH} asked for 98%. On validation, 55 of the 56 at or above it were "
                         "right. A person still has to look at 28.")
    on_validation = AutoAccept(0.98, 0.93, ON_VALIDATION, 56, 70, 55 / 56, 0.9412, 56, 70, 55 / 56)
    statement = auto_accept_statement(on_validation, photos=40, accepted=12, score_name="probability")
    assert ": on validation, rank-1 answers at or above it were right 98.2% of the time (55 of 56; at least 94.1% " \
           "with 90% confidence) \N{EM DASH} asked for 98%. A person still has to look at 28." in statement
    unreached = replace(AUTO, validation_accepted=0, validation_precision=math.nan)
    assert "No validation answer reached it." in auto_accept_statement(unreached, 40, 12, "probability")
    assert ("Auto-accepted: 1 of 6 photos, whose rank-1 probability is at least 0.93" in render()
            and "A person still has to look at 5." in render())


def test_without_a_threshold_every_photo_goes_to_a_person():
    never = AutoAccept(precision=0.98, threshold=math.inf, chosen_on=ON_VALIDATION, chosen_accepted=0,
                       chosen_answers=70, chosen_precision=math.nan, lower_bound=math.nan, validation_accepted=0,
                       validation_queries=70, validation_precision=math.nan)
    statement = auto_accept_statement(never, photos=40, accepted=0, score_name="inliers")
    assert statement == ("Nothing is auto-accepted: on validation, no threshold on the rank-1 inliers made the rank-1 "
                         "answers above it right 98% of the time (70 answers with a known individual at rank 1), "
                         "so a person has to look at every photo (40).")
    queries = [q for q in synthetic_queries() if not q.accepted]
    assert "a person has to look at every photo (5)." in render(queries, auto_accept=never)
    assert "Nothing is auto-accepted: a person has to look at every photo (5)." in render(queries, auto_accept=None)


def test_the_page_fetches_nothing_from_the_network():
    text = render().lower()
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(?!data:)[a-z]+:""", text)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*//""", text)
    for outside in ("<link", "@import", "<iframe", "fetch(", "xmlhttprequest", "import("):
        assert outside not in text, outside
    assert not re.search(r"(?<![a-z])url\(", text)  # a CSS url(): createObjectURL( is the export's download
    # the images are the thumbnails beside the page; the view's photo files are this machine's
    assert all(image["src"].startswith("thumbnails/") for image in Gallery(render()).images)
    assert all(url.startswith("file:///photos/") for url in re.findall(r'"original": "([^"]*)"', render()))


def test_two_runs_keep_separate_decisions():
    images = ["a.jpg", "b.jpg"]
    key = storage_key("results", "local", images)
    assert key == storage_key("results", "local", list(images))
    assert len({key, storage_key("results_2", "local", images), storage_key("results", "fused", images),
                storage_key("results", "local", ["a.jpg", "c.jpg"])}) == 4


@pytest.mark.parametrize("queries, message", [
    ([query("a.jpg", ["w_1"], 0.5), query("a.jpg", ["w_2"], 0.4)], "'a.jpg' twice"),
    ([query("a.jpg", ["w_1"], 0.5), query("a.png", ["w_2"], 0.4)], "same|own new individual id"),
    ([query("a.jpg", [NEW_WHALE, "w_1"], 0.5, accepted=True)], "auto-accepted but its rank 1"),
    ([ReviewQuery("a.jpg", [candidate(f"w_{i}", 0.1) for i in range(6)], 0.1, False)], "at most 5"),
])
def test_queries_the_page_cannot_show_are_refused(queries, message):
    with pytest.raises(ValueError, match=message):
        render(queries)


@pytest.mark.parametrize("changed, message", [
    ({"thumbnail": "https://example.org/a.jpg"}, "thumbnail of 'a.jpg' is not a file beside the page"),
    ({"thumbnail": "/results/review/thumbnails/a.jpg"}, "not a file beside the page"),
    ({"thumbnail": "thumbnails/../../a.jpg"}, "not a file beside the page"),
    ({"thumbnail": "file:///a.jpg"}, "not a file beside the page"),
    ({"original": "https://example.org/a.jpg"}, "original of 'a.jpg' is not a file: URL"),
    ({"width": 0}, "'a.jpg' has no frame"),
])
def test_every_photo_shown_needs_a_thumbnail_beside_the_page(changed, message):
    queries = [query("a.jpg", ["w_1", "w_2"], 0.5)]
    with pytest.raises(ValueError, match="a.jpg: no picture of 'w_2_photo.jpg'"):
        render(queries, photos={name: photo for name, photo in pictures(queries).items() if name != "w_2_photo.jpg"})
    photos = pictures(queries)
    with pytest.raises(ValueError, match=message):
        render(queries, photos={**photos, "a.jpg": replace(photos["a.jpg"], **changed)})


# --- the photos themselves: thumbnails, and where the inlier lines land --------------------

def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF block whose one tag is its orientation (6: turn 90 degrees clockwise to show)."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation, SHORT, one value
    exif = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]


def halves(width: int, height: int, left=(0, 0, 230), right=(230, 90, 0)) -> np.ndarray:
    """A colour photo (BGR): its left half red, its right half blue."""
    photo = np.empty((height, width, 3), np.uint8)
    photo[:, :width // 2], photo[:, width // 2:] = left, right
    return photo


def thumbnails_of(photos: dict, tmp_path: Path, long_side: int = 800) -> tuple[dict, Path]:
    folder = tmp_path / "thumbnails"
    return write_thumbnails(photos, folder, long_side), folder


@pytest.mark.parametrize("width, height, expected", [(2400, 1400, (800, 467)), (1000, 2000, (400, 800)),
                                                     (300, 200, (300, 200))])
def test_a_thumbnail_is_the_whole_photo_in_colour_its_long_side_at_most_as_asked(tmp_path, width, height,
                                                                                  expected):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg(halves(width, height)))
    thumbnails, folder = thumbnails_of({"photo.jpg": Original(path, width, height)}, tmp_path)
    thumbnail = cv2.imread(str(folder / thumbnails["photo.jpg"].file), cv2.IMREAD_UNCHANGED)
    # the whole frame, never enlarged; a large JPEG decoded at reduced scale keeps the frame's shape
    assert thumbnail.shape == (expected[1], expected[0], 3)
    assert thumbnails["photo.jpg"].width / thumbnails["photo.jpg"].height == pytest.approx(width / height, rel=0.01)
    # in colour: red on the left, blue on the right
    left, right = thumbnail[:, : expected[0] // 4].mean(axis=(0, 1)), thumbnail[:, -expected[0] // 4:].mean(axis=(0, 1))
    assert np.abs(left - (0, 0, 230)).max() < 12 and np.abs(right - (230, 90, 0)).max() < 12


def test_grey_sixteen_bit_and_tiff_photos_are_shown_as_they_are(tmp_path):
    grey = np.tile(np.linspace(0, 255, 640).astype(np.uint8), (480, 1))
    deep = (halves(500, 300).astype(np.uint16) * 257)  # 16 bits a channel, as a scientific camera writes
    files = {"grey.png": grey, "deep.tif": deep, "alpha.png": np.dstack([halves(400, 300), np.full((300, 400), 128,
                                                                                                    np.uint8)])}
    for name, image in files.items():
        assert cv2.imwrite(str(tmp_path / name), image)
    thumbnails, folder = thumbnails_of({name: Original(tmp_path / name) for name in files}, tmp_path, 320)
    shown = {name: cv2.imread(str(folder / thumbnail.file), cv2.IMREAD_UNCHANGED)
             for name, thumbnail in thumbnails.items()}
    # a grey photo stays grey, in one channel; its gradient kept
    assert shown["grey.png"].shape == (240, 320)
    assert np.abs(shown["grey.png"][120].astype(int) - np.linspace(0, 255, 320)).max() < 8
    for name in ("deep.tif", "alpha.png"):
        assert shown[name].shape[2] == 3 and shown[name].dtype == np.uint8, name
        assert np.abs(shown[name][:, :40].mean(axis=(0, 1)) - (0, 0, 230)).max() < 12, name


def test_a_photo_turned_by_its_exif_orientation_is_shown_turned_as_the_methods_read_it(tmp_path):
    stored = halves(800, 400)  # stored landscape, red on the left; shown turned a quarter clockwise
    data = with_exif_orientation(jpeg(stored), 6)
    (tmp_path / "turned.jpg").write_bytes(data)
    thumbnails, folder = thumbnails_of({"turned.jpg": Original(tmp_path / "turned.jpg", 800, 400)}, tmp_path)
    thumbnail = cv2.imread(str(folder / thumbnails["turned.jpg"].file), cv2.IMREAD_UNCHANGED)
    # portrait, red on top: as preprocessing's decode (read_gray) turns it, so the lines match
    assert thumbnail.shape[:2] == read_gray(data).shape == (800, 400)
    assert (thumbnails["turned.jpg"].width, thumbnails["turned.jpg"].height) == (400, 800)
    assert np.abs(thumbnail[:100].mean(axis=(0, 1)) - (0, 0, 230)).max() < 12


def test_a_photo_that_cannot_be_read_is_named_and_the_thumbnails_written_before_are_kept(tmp_path):
    (tmp_path / "good.jpg").write_bytes(jpeg(halves(200, 100)))
    _, folder = thumbnails_of({"good.jpg": Original(tmp_path / "good.jpg")}, tmp_path)
    before = sorted(path.name for path in folder.iterdir())
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a photo")
    for name, message in (("bad.jpg", "bad.jpg: not a readable image"),
                          ("gone.jpg", "gone.jpg: the photo cannot be read for its thumbnail")):
        with pytest.raises(BadImage, match=message):
            thumbnails_of({"good.jpg": Original(tmp_path / "good.jpg"), name: Original(tmp_path / name)}, tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.jpg", "good.jpg", "thumbnails"]
    # written again, the folder holds the new photos' thumbnails alone
    thumbnails, _ = thumbnails_of({ODD: Original(tmp_path / "good.jpg")}, tmp_path)
    assert [path.name for path in folder.iterdir()] == [thumbnails[ODD].file] == [thumbnail_file(ODD)]
    assert re.fullmatch(r"o_dd__x_____-[0-9a-f]{10}\.jpg", thumbnail_file(ODD))
    assert thumbnail_file("a.jpg") != thumbnail_file("a.png") != thumbnail_file("a_jpg")


def blob_photo(width: int, height: int, centre: tuple[float, float], sigma: float = 6.0) -> np.ndarray:
    """A grey photo with one bright blob, centred at `centre` (x, y: pixels from the photo's edge)."""
    x, y = np.arange(width) + 0.5, np.arange(height) + 0.5
    blob = np.exp(-((x[None] - centre[0]) ** 2 + (y[:, None] - centre[1]) ** 2) / (2 * sigma ** 2))
    return (40 + 180 * blob).astype(np.uint8)


@pytest.mark.parametrize("width, height, centre", [(600, 300, (412.0, 121.0)), (300, 600, (121.0, 412.0)),
                                                   (601, 299, (350.3, 170.7))])
def test_the_local_methods_keypoints_map_into_the_photo_where_they_were_found(tmp_path, width, height, centre):
    """Keypoints lie in the square that centres the photo, found on the preprocessed square or,
    with local.max_side, on the photo itself: either way in_photo_frame puts the blob's keypoint
    on the blob, within a pixel of the photo (of either orientation)."""
    grey = blob_photo(width, height, centre)
    path = tmp_path / "blob.png"
    cv2.imwrite(str(path), grey)
    settings = KeypointSettings.defaults(n_features=20, image_size=448, border=0.0)
    on_square = extract_features(square_image(grey, 896), settings)[0] / settings.image_size
    at_max_side = replace(settings, max_side=400)
    on_photo = extract_photo_features(photo_at_max_side(path, 400), at_max_side)[0] / at_max_side.side
    for shares in (on_square, on_photo):
        found = in_photo_frame(shares, width, height) * (width, height)
        assert np.linalg.norm(found - centre, axis=1).min() < 1.0
    # the photo's corners, and its centre, wherever the padding puts them in the square
    long_side = max(width, height)
    corners = np.array([[(long_side - width) / 2, (long_side - height) / 2],
                        [(long_side + width) / 2, (long_side + height) / 2], [long_side / 2] * 2]) / long_side
    assert in_photo_frame(corners, width, height) == pytest.approx(np.array([[0, 0], [1, 1], [0.5, 0.5]]))


def test_the_inlier_lines_land_on_each_photo_where_its_row_shows_it():
    """A landscape query beside a portrait photo, each shown whole in its box: the line from the
    query's top-left corner to the photo's, and from centre to centre."""
    lines = ((0.0, 0.25, 0.25, 0.0), (0.5, 0.5, 0.5, 0.5))
    verified = ReviewCandidate("w_1", 0.9, "w_1_photo.jpg", lines)
    queries = [ReviewQuery("a.jpg", [verified], 0.9, False)]
    photos = {"a.jpg": PagePhoto("thumbnails/a.jpg", 600, 300),
              "w_1_photo.jpg": PagePhoto("thumbnails/w.jpg", 300, 600)}
    text = render(queries, photos=photos)
    # the query 100 x 50, 25 from the top; the photo 50 x 100, 25 into its box at 104
    assert re.findall(r'<path class="lines" d="([^"]*)"', text) == ["M0.00 25.00L129.00 0.00M50.00 50.00L154.00 50.00"]
    assert re.findall(r'<path class="ends" d="([^"]*)"', text) == [
        "M0.00 25.00h0M129.00 0.00h0M50.00 50.00h0M154.00 50.00h0"]


def test_the_page_shows_the_photo_files_of_a_run_and_names_one_it_cannot_find(tmp_path):
    """write_review on the made-up run of test_gallery.py, with a photo file of each photo: the
    page's images are thumbnails of those files, beside it; its view links the files."""
    r = made_up_run(tmp_path)
    data, rows = tmp_path / "data", []
    for split, names in (("train", [row[0] for row in GALLERY_TRAIN]), ("test", [row[0] for row in GALLERY_TEST])):
        (data / split).mkdir(parents=True)
        for i, name in enumerate(names):
            width, height = frame(i)
            (data / split / name).write_bytes(jpeg(np.full((height, width, 3), colour(i), np.uint8)))
            rows.append((name, split, width, height))
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows, columns=["image", "split", "width", "height"]).to_csv(manifest, index=False)
    files, out = r / "metric_learning", tmp_path / "review"

    def review(thumbnails_out=out / "thumbnails", **options):
        return write_review(method="metric_learning", run="made up", precision=0.9,
                            split_csv=r / "validation/split.csv",
                            validation_predictions=files / "predictions/validation.csv",
                            test_predictions=files / "predictions/test.csv",
                            threshold_curve=files / "new_whale_threshold.csv", train_images=r / "preprocess/train.npy",
                            train_images_index=r / "preprocess/train.csv", test_images=r / "preprocess/test.npy",
                            test_images_index=r / "preprocess/test.csv", page_out=out / "page.html",
                            thumbnails_out=thumbnails_out, queue_out=out / "queue.csv",
                            auto_accept_out=out / "auto_accept.csv", manifest=manifest,
                            photo_folders={"train": data / "train", "test": data / "test"},
                            embeddings=EmbeddingFiles(*(files / "embeddings" / name for name in
                                                        ("train.npy", "train.csv", "test.npy", "test.csv"))),
                            **options)

    review(n_jobs=2)
    text = (out / "page.html").read_text()
    images = Gallery(text).images
    assert {image["data-photo-name"] for image in images} >= {"t1.jpg", "t2.jpg", "t3.jpg", "t4.jpg", "b1.jpg"}
    originals = json.loads(re.search(r'<script type="application/json" id="photos">(.*?)</script>', text).group(1))
    for image in images:
        name = image["data-photo-name"]
        thumbnail = cv2.imread(str(out / image["src"]), cv2.IMREAD_UNCHANGED)
        split = "test" if name.startswith("t") else "train"
        photo = cv2.imread(str(data / split / name))
        assert thumbnail.shape == photo.shape, name  # the whole photo (all under 800 pixels), in colour
        assert np.abs(thumbnail.astype(int) - photo).mean() < 3, name
        assert originals[name]["original"] == (data / split / name).resolve().as_uri()
    assert sorted(path.name for path in (out / "thumbnails").iterdir()) == sorted(
        thumbnail_file(name) for name in originals)
    (data / "train" / "b1.jpg").unlink()
    with pytest.raises(BadImage, match="b1.jpg: the photo cannot be read"):
        review()
    with pytest.raises(ValueError, match="thumbnails .* must be a folder beside it"):
        review(thumbnails_out=tmp_path / "elsewhere")


def test_a_photo_not_in_the_manifest_is_looked_for_among_the_catalogue_additions(tmp_path):
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame([("a.jpg", "train", 600, 400), ("t.jpg", "test", 30, 20)],
                 columns=["image", "split", "width", "height"]).to_csv(manifest, index=False)
    (tmp_path / "added").mkdir()
    (tmp_path / "added" / "e.jpg").write_bytes(b"")
    folders = {"train": tmp_path / "train", "test": tmp_path / "test"}
    found = original_photos(["t.jpg", "a.jpg", "e.jpg"], manifest, folders, tmp_path / "added")
    assert found == {"t.jpg": Original(tmp_path / "test" / "t.jpg", 30, 20),
                     "a.jpg": Original(tmp_path / "train" / "a.jpg", 600, 400),
                     "e.jpg": Original(tmp_path / "added" / "e.jpg")}
    with pytest.raises(ValueError, match="x.jpg: no photo of that name in .*manifest.csv nor in .*added"):
        original_photos(["x.jpg"], manifest, folders, tmp_path / "added")


# --- in a browser --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    with open_browser() as opened:
        yield opened


@pytest.fixture
def review_html(tmp_path):
    return written_page(synthetic_queries(), tmp_path)


class Session:
    """A page open in a fresh browser profile, with the errors its console and script reported."""

    def __init__(self, browser, path):
        self.context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(path.as_uri(), wait_until="load")

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def sections(self) -> list[dict]:
        return self.page.eval_on_selector_all("section.query", "all => all.map(s => ({...s.dataset}))")

    def states(self) -> dict[str, tuple[str, str, str, str]]:
        return {s["image"]: (s["decision"], s["decidedId"], s["by"], s["sameAs"]) for s in self.sections()}

    def current(self) -> str:
        current = [s["image"] for s in self.sections() if s["current"] == "true"]
        assert len(current) == 1, current
        return current[0]

    def message(self) -> str:
        return self.page.inner_text("#message")

    def close(self) -> None:
        self.context.close()


UNDECIDED = ("", "", "", "")


@CHROMIUM_SKIP
def test_a_person_decides_by_keyboard_and_the_decisions_survive_a_reload_and_export(browser, review_html, tmp_path):
    session = Session(browser, review_html)
    assert session.current() == "a.jpg"
    assert session.states()["e.jpg"] == ("confirmed", "w_3", "auto", "")
    assert session.page.inner_text("#progress") == "Decided 0 of 5 to look at; 1 auto-accepted."
    # nobody is new yet: "same as" says so and changes nothing
    session.press("s")
    assert "No other photo is decided new" in session.message()
    assert session.states()["a.jpg"] == UNDECIDED and session.current() == "a.jpg"

    session.press("1")  # a.jpg is w_1, and the page moves on
    assert session.current() == "b.jpg"
    session.press("n")  # b.jpg is someone new
    session.press("s")  # c.jpg is that same new one; "same as" stays on the photo
    assert session.current() == "c.jpg"
    assert session.page.inner_text('section[data-current="true"] .status') == "new individual new-b (same as b.jpg)"
    session.press("j", "u")  # the odd name: not sure
    assert session.current() == "e.jpg"
    decided = {"a.jpg": ("confirmed", "w_1", "person", ""), "b.jpg": ("new", "new-b", "person", ""),
               "c.jpg": ("new", "new-b", "person", "b.jpg"), ODD: ("unsure", "", "person", ""),
               "e.jpg": ("confirmed", "w_3", "auto", ""), "f.jpg": UNDECIDED}
    assert session.states() == decided
    assert session.page.inner_text("#progress") == "Decided 4 of 5 to look at (1 not sure); 1 auto-accepted."

    session.page.reload(wait_until="load")
    assert session.states() == decided
    assert session.current() == "e.jpg"

    session.press("2")  # a person overrules the auto-accepted e.jpg...
    assert session.states()["e.jpg"] == ("confirmed", "w_1", "person", "")
    session.press("1")  # ...and f.jpg's rank 1 is new_whale: a new individual
    assert session.states()["f.jpg"] == ("new", "new-f", "person", "")
    session.press("k", "Backspace")  # cleared, e.jpg is auto-accepted again
    assert session.states()["e.jpg"] == ("confirmed", "w_3", "auto", "")
    session.press("ArrowUp", "ArrowLeft")
    assert session.current() == "c.jpg"
    session.press("s")  # the most recently marked new (f.jpg) first, then an earlier one (b.jpg)
    assert session.states()["c.jpg"] == ("new", "new-f", "person", "f.jpg")
    session.press("s")
    assert session.states()["c.jpg"] == ("new", "new-b", "person", "b.jpg")
    session.press("k", "k", "Delete")
    assert session.current() == "a.jpg" and session.states()["a.jpg"] == UNDECIDED

    with session.page.expect_download() as download:
        session.press("e")
    assert download.value.suggested_filename == "decisions.csv"
    exported = tmp_path / "decisions.csv"
    download.value.save_as(exported)
    text = exported.read_text(encoding="utf-8")
    assert text.splitlines()[3] == '"o,dd ""x"" <&>.jpg",unsure,,person'
    with open(exported, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows == [list(EXPORTED_COLUMNS),
                    ["b.jpg", "new", "new-b", "person"],
                    ["c.jpg", "new", "new-b", "person"],
                    [ODD, "unsure", "", "person"],
                    ["e.jpg", "confirmed", "w_3", "auto"],
                    ["f.jpg", "new", "new-f", "person"]]
    assert session.errors == []
    session.close()


@CHROMIUM_SKIP
def test_an_encounter_is_decided_once_and_exported_as_a_row_for_each_photo(browser, tmp_path):
    together = ReviewQuery("a.jpg", query("a.jpg", ["w_1", "w_2", "w_3", NEW_WHALE, "w_5"], 0.2).candidates, 0.2,
                           False, others=("a2.jpg", "a3.jpg"))
    queries = [together, query("b.jpg", ["w_2", "w_1", "w_4", "w_5", NEW_WHALE], 0.3)]
    page_path = written_page(queries, tmp_path, "encounter.html")
    text = page_path.read_text()
    assert "4 test photos in 2 queries" in text and text.count('class="encounter-photo"') == 2
    session = Session(browser, page_path)
    session.press("n", "1")  # the encounter is someone new; b.jpg is w_2
    with session.page.expect_download() as download:
        session.press("e")
    exported = tmp_path / "decisions.csv"
    download.value.save_as(exported)
    with open(exported, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[1:] == [["a.jpg", "new", "new-a", "person"], ["a2.jpg", "new", "new-a", "person"],
                        ["a3.jpg", "new", "new-a", "person"], ["b.jpg", "confirmed", "w_2", "person"]]
    # every photo of the encounter is shown, each by its own thumbnail
    shown = session.page.eval_on_selector_all('section.query[data-image="a.jpg"] img',
                                               "all => all.map(i => [i.dataset.photoName, i.src])")
    assert {"a.jpg", "a2.jpg", "a3.jpg"} <= {name for name, _ in shown}
    assert all(src == (tmp_path / "thumbnails" / thumbnail_file(name)).as_uri() for name, src in shown)
    assert session.errors == []
    session.close()
    with pytest.raises(ValueError, match="name the photo 'a2.jpg' twice"):
        render([together, ReviewQuery("a2.jpg", [], math.nan, False)])


def proposal(*groups: list[str]) -> pd.DataFrame:
    """new_individuals.csv's image and group columns: each list a proposed individual."""
    return pd.DataFrame([{"image": image, "group": group} for group, images in enumerate(groups, start=1)
                         for image in images])


def test_each_photo_is_shown_beside_those_proposed_as_the_same_new_individual_on_the_page():
    together = ReviewQuery("a.jpg", [], math.nan, False, others=("a2.jpg",))
    queries = [together, *(ReviewQuery(image, [], math.nan, False) for image in ("b.jpg", "c.jpg", "d.jpg"))]
    # gone.jpg was decided before: not on the page; a2.jpg speaks for its encounter
    shown = with_proposals(queries, proposal(["b.jpg", "a2.jpg", "gone.jpg"], ["c.jpg", "x.jpg"]))
    assert [query.proposed for query in shown] == [("b.jpg",), ("a2.jpg",), (), ()]
    text = render(shown)
    assert text.count('class="proposed-photo"') == 2 and 'data-proposed="[&quot;b.jpg&quot;]"' in text
    with pytest.raises(ValueError, match="'x.jpg', which is not a photo on the page"):
        render([replace(queries[1], proposed=("x.jpg",))])


@CHROMIUM_SKIP
def test_same_as_offers_the_photo_proposed_as_the_same_new_individual_first(browser, tmp_path):
    queries = with_proposals([query(image, [NEW_WHALE, "w_1", "w_2", "w_3", "w_4"], math.nan)
                              for image in ("a.jpg", "b.jpg", "c.jpg")], proposal(["a.jpg", "c.jpg"]))
    session = Session(browser, written_page(queries, tmp_path, "proposed.html"))
    session.press("n", "n", "s")  # a.jpg and b.jpg new, b.jpg the more recent; c.jpg same as...
    assert session.states()["c.jpg"] == ("new", "new-a", "person", "a.jpg")  # ...a.jpg, proposed with it
    session.press("s")  # then the others, most recent first
    assert session.states()["c.jpg"] == ("new", "new-b", "person", "b.jpg")
    assert session.errors == []
    session.close()


@CHROMIUM_SKIP
def test_the_order_a_typed_id_and_a_click(browser, review_html, tmp_path):
    session = Session(browser, review_html)
    queue = [s["image"] for s in session.sections()]
    by_individual = [s["image"] for s in sorted(session.sections(), key=lambda s: (s["rank1"], s["image"]))]
    assert by_individual != queue
    session.press("o")
    assert [s["image"] for s in session.sections()] == by_individual
    assert session.page.get_attribute("body", "data-order") == "individual"
    # the current photo stays current; j follows the order shown
    assert session.current() == "a.jpg"
    session.press("j")
    assert session.current() == "b.jpg"
    session.page.click("#order")
    assert [s["image"] for s in session.sections()] == queue

    # a typed id must be a known one
    session.press("i")
    session.page.keyboard.type("w_99")
    session.page.keyboard.press("Enter")
    assert "w_99 is not a known individual" in session.message()
    assert session.states()["b.jpg"] == UNDECIDED
    session.page.fill("#typed-id", "w_9")
    session.page.keyboard.press("Enter")
    assert session.states()["b.jpg"] == ("confirmed", "w_9", "person", "")
    assert session.current() == "c.jpg"
    # keys typed into the id box decide nothing
    session.press("i", "u", "Escape")
    assert session.states()["c.jpg"] == UNDECIDED

    odd = session.page.locator("section.query").nth(3)
    assert odd.get_attribute("data-image") == ODD
    odd.locator('figure.candidate[data-rank="3"]').click()
    assert session.states()[ODD] == ("confirmed", "w_1", "person", "")
    assert session.current() == "e.jpg"
    # another run's page in the same browser reads none of these decisions
    other = written_page(synthetic_queries(), tmp_path, "other.html", run="results_2")
    session.page.goto(other.as_uri(), wait_until="load")
    assert all(state in (UNDECIDED, ("confirmed", "w_3", "auto", "")) for state in session.states().values())
    assert session.errors == []
    session.close()


@CHROMIUM_SKIP
def test_a_screenshot_of_the_page(browser, review_html, tmp_path):
    png = screenshot(review_html, tmp_path / "shots" / "review.png", width=800, height=600, keys=["1"],
                     browser=browser)
    image = cv2.imread(str(png))
    assert image.shape == (600, 800, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # drawn, not blank


def viewer_images(session: Session) -> list[dict]:
    return session.page.eval_on_selector_all("#viewer-frame img", """all => all.map(i => ({
        name: i.dataset.photoName, shown: i.dataset.shown, src: i.currentSrc, width: i.naturalWidth,
        height: i.naturalHeight}))""")


def viewer_scale(session: Session) -> float:
    return float(session.page.eval_on_selector("#viewer-stage", "s => s.style.getPropertyValue('--scale')"))


@CHROMIUM_SKIP
def test_a_key_shows_the_photo_beside_its_candidate_at_full_resolution_to_zoom_into(browser, review_html, tmp_path):
    session = Session(browser, review_html)
    page = session.page
    assert "<kbd>v</kbd> view the photo beside its candidate (the one chosen, else the first) at full " \
           "resolution" in page.content()
    # the row shows the thumbnail of the photo file: its whole frame (600 x 400, not enlarged)
    query_photo = 'section.query[data-image="a.jpg"] figure.query-photo img'
    page.wait_for_function(f"() => document.querySelector('{query_photo}').naturalWidth > 0")
    assert page.eval_on_selector(query_photo, "i => [i.naturalWidth, i.naturalHeight]") == [600, 400]

    session.press("v")  # a.jpg beside its rank 1, w_1, verified: drawn with its inlier lines
    assert page.is_visible("#viewer") and page.get_attribute("#viewer", "data-rank") == "1"
    assert page.inner_text("#viewer-title") == "a.jpg beside candidate 1, w_1 (w_1_photo.jpg), 12 inlier matches"
    page.wait_for_function("() => Array.from(document.querySelectorAll('#viewer-frame img'))"
                           ".every(i => i.dataset.shown === 'original' && i.complete && i.naturalWidth > 0)")
    shown = viewer_images(session)
    files = {name: (tmp_path / "photos" / name).as_uri() for name in ("a.jpg", "w_1_photo.jpg")}
    assert [(image["name"], image["src"]) for image in shown] == list(files.items())
    row_lines = page.get_attribute('section.query[data-image="a.jpg"] figure[data-rank="1"] path.lines', "d")
    assert page.get_attribute("#viewer-frame path.lines", "d") == row_lines and row_lines.count("M") == 12

    # zoom by key about the centre, by the wheel about the pointer; move by dragging; 0: the whole pair
    fitted = viewer_scale(session)
    session.press("+")
    assert viewer_scale(session) == pytest.approx(1.5 * fitted)
    session.press("0")
    assert viewer_scale(session) == pytest.approx(fitted)
    page.mouse.move(400, 500)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => parseFloat(document.getElementById('viewer-stage').style.getPropertyValue("
                           f"'--scale')) > {fitted * 2}")
    before = page.eval_on_selector("#viewer-stage", "s => s.style.transform")
    page.mouse.down()
    page.mouse.move(300, 450, steps=4)
    page.mouse.up()
    assert page.eval_on_selector("#viewer-stage", "s => s.style.transform") != before
    # while the view is open, keys decide nothing; 2 shows the next candidate, unverified: no lines
    session.press("n", "u", "j")
    assert session.states()["a.jpg"] == UNDECIDED and session.current() == "a.jpg"
    session.press("2")
    assert page.get_attribute("#viewer", "data-rank") == "2" and page.query_selector("#viewer-frame svg") is None
    assert [image["name"] for image in viewer_images(session)] == ["a.jpg", "w_2_photo.jpg"]
    session.press("Escape")
    assert not page.is_visible("#viewer") and viewer_images(session) == []
    # closed, the keys decide again; the view opens on the candidate chosen
    session.press("3", "k", "v")
    assert session.states()["a.jpg"] == ("confirmed", "w_3", "person", "")
    assert page.get_attribute("#viewer", "data-rank") == "3"
    session.press("v")
    assert not page.is_visible("#viewer")
    # f.jpg's rank 1 is new_whale, no photo: the view opens on the first candidate with one
    session.press("j", "j", "j", "j", "j", "v")
    assert session.current() == "f.jpg" and page.get_attribute("#viewer", "data-rank") == "2"
    assert session.errors == []
    session.close()


@CHROMIUM_SKIP
def test_where_the_photo_files_cannot_be_reached_the_view_shows_the_thumbnails(browser, review_html, tmp_path):
    """As on another machine than the photos: the page and its thumbnails, the photo files gone."""
    for photo in (tmp_path / "photos").iterdir():
        photo.unlink()
    session = Session(browser, review_html)
    session.press("v")
    session.page.wait_for_function("() => Array.from(document.querySelectorAll('#viewer-frame img'))"
                                   ".every(i => i.dataset.shown === 'unreachable')")
    shown = viewer_images(session)
    assert [image["src"] for image in shown] == [(tmp_path / "thumbnails" / thumbnail_file(name)).as_uri()
                                                  for name in ("a.jpg", "w_1_photo.jpg")]
    assert all(image["width"] > 0 for image in shown)
    assert "its file cannot be shown here" in session.page.inner_text("#viewer-note")
    # what the browser says of each file it could not read, and nothing else
    assert session.errors and all("ERR_FILE_NOT_FOUND" in error for error in session.errors)
    session.close()
