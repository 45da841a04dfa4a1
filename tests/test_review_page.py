"""The review page: what it shows and says, that it fetches nothing, and, in a real browser, that a
person's keys decide the photos, that the decisions survive a reload and export as decisions.csv."""

from __future__ import annotations

import base64
import csv
import math
import re
from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest
from browser import CHROMIUM_SKIP, SKIP_REASON, open_browser, screenshot

# the query sections, their candidates and every image, as a browser reads a page
from test_gallery import Gallery

from whaleid.identification.auto_accept import ON_FIT_FOLDS, ON_VALIDATION, AutoAccept
from whaleid.review.decisions import new_individual_id
from whaleid.review.html import format_score
from whaleid.review.review_page import (
    EXPORTED_COLUMNS,
    ReviewCandidate,
    ReviewQuery,
    auto_accept_statement,
    render_review_page,
    storage_key,
    with_proposals,
)
from whaleid.vocabulary import NEW_WHALE

# An image name with every character that HTML, a script or a CSV could stumble on.
ODD = 'o,dd "x" <&>.jpg'
KNOWN = [f"w_{i}" for i in range(1, 10)]


def png_uri(value: int, width: int = 8, height: int = 8) -> str:
    ok, png = cv2.imencode(".png", np.full((height, width, 3), value, np.uint8))
    assert ok
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


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


def pictures(queries) -> dict[str, str]:
    """A picture of every photo the queries show, each its own grey."""
    names = sorted({image for q in queries for image in (q.image, *q.others)}
                   | {c.photo for q in queries for c in q.candidates if c.photo})
    return {name: png_uri(20 + 3 * i) for i, name in enumerate(names)}


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
    # every inlier a line between the two photos, each photo's picture in the page once
    drawn = re.findall(r'<path class="lines" d="([^"]*)"', text)
    assert [d.count("M") for d in drawn] == [c.inliers for q in queries for c in q.candidates if c.lines is not None]
    for name, picture in pictures(queries).items():
        assert text.count(picture) == 1, name
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


def test_the_page_fetches_nothing():
    text = render().lower()
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(?!data:)[a-z]+:""", text)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*//""", text)
    for outside in ("<link", "@import", "<iframe", "fetch(", "xmlhttprequest", "import("):
        assert outside not in text, outside
    assert not re.search(r"(?<![a-z])url\(", text)  # a CSS url(): createObjectURL( is the export's download
    # the pictures are handed to the images by the script, from the page's own JSON
    assert all("src" not in image and image["data-photo-name"] for image in Gallery(render()).images)


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


def test_every_photo_shown_needs_a_picture_that_is_its_own_data():
    queries = [query("a.jpg", ["w_1", "w_2"], 0.5)]
    with pytest.raises(ValueError, match="a.jpg: no picture of 'w_2_photo.jpg'"):
        render(queries, photos={name: uri for name, uri in pictures(queries).items() if name != "w_2_photo.jpg"})
    with pytest.raises(ValueError, match="picture of 'a.jpg' is not an image data URI"):
        render(queries, photos={**pictures(queries), "a.jpg": "https://example.org/a.jpg"})


# --- in a browser --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    with open_browser() as opened:
        yield opened


@pytest.fixture
def review_html(tmp_path):
    path = tmp_path / "review.html"
    path.write_text(render(), encoding="utf-8")
    return path


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
    page_path = tmp_path / "encounter.html"
    page_path.write_text(render(queries), encoding="utf-8")
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
    # every photo of the encounter is shown, each given its own picture
    shown = session.page.eval_on_selector_all('section.query[data-image="a.jpg"] img',
                                               "all => all.map(i => [i.dataset.photoName, i.src])")
    pictured = pictures(queries)
    assert {"a.jpg", "a2.jpg", "a3.jpg"} <= {name for name, _ in shown}
    assert all(src == pictured[name] for name, src in shown)
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
    page_path = tmp_path / "proposed.html"
    page_path.write_text(render(queries), encoding="utf-8")
    session = Session(browser, page_path)
    session.press("n", "n", "s")  # a.jpg and b.jpg new, b.jpg the more recent; c.jpg same as...
    assert session.states()["c.jpg"] == ("new", "new-a", "person", "a.jpg")  # ...a.jpg, proposed with it
    session.press("s")  # then the others, most recent first
    assert session.states()["c.jpg"] == ("new", "new-b", "person", "b.jpg")
    assert session.errors == []
    session.close()


@CHROMIUM_SKIP
def test_the_order_a_typed_id_and_a_click(browser, review_html):
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
    other = review_html.with_name("other.html")
    other.write_text(render(run="results_2"), encoding="utf-8")
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
