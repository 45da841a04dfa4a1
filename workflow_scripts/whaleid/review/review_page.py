"""The review page: a person goes through a run's test photos and decides, by keyboard, who each one is.

Each test photo (a `ReviewQuery`) is shown beside the identification method's five ranked
candidates (`ReviewCandidate`), each by the catalogue photo that speaks for it, with its score;
the queue comes least sure first. A photo whose rank-1 answer is a known individual scored at or
above the auto-accept threshold (`AutoAccept`: chosen on validation for a precision asked for) is
marked auto-accepted: it counts as confirmed unless a person decides otherwise.

A person decides each photo: ``confirmed`` (one of the candidates, or another known individual
typed in), ``new`` (a new individual: its id is `new_individual_id` of the photo, or, "same as",
the id of another photo already decided new) or ``unsure``. Decisions are kept in the browser's
localStorage, under a key of the run, the method and the photos (`storage_key`), so a reload or
another run's page loses nothing; they are exported as ``decisions.csv`` (EXPORTED_COLUMNS: one
row a decided photo, ``by`` person or auto), which `decisions.read_decisions` reads back.

The page is one self-contained HTML file: inline CSS and script, pictures as data URIs, no
server and nothing fetched. Each photo's picture is in it once (a photo that speaks for many
queries is not repeated), in a JSON block the script hands to the images as they come near the
view; a candidate's inlier matches are lines of an SVG drawn over the query and the catalogue
photo side by side. So a run of 1,746 test photos makes a page of tens of megabytes, not
hundreds.

`write_review` makes the page of a run: its queue of test photos (`review_queries`), their
photos and evidence drawn as the candidate gallery draws them (`evidence`, `pictures`).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from whaleid.identification.search import read_encounters, read_reviewed
from whaleid.io.files import write_csv, write_text
from whaleid.review.auto_accept import AutoAccept, auto_accept
from whaleid.review.decisions import new_individual_id
from whaleid.review.evidence import chosen_threshold, confidence, gallery_queries, method_evidence
from whaleid.review.pictures import jpeg_uri
from whaleid.vocabulary import N_ANSWERS, NEW_WHALE

# What decisions.csv holds, as the page exports it.
EXPORTED_COLUMNS = ("Image", "decision", "Id", "by")
# How each kind of score is written.
SCORE_FORMATS = {"probability": "{:.3f}", "similarity": "{:.3f}", "inliers": "{:.0f}", "score": "{:.3g}"}
STORAGE_PREFIX = "whaleid-review"


@dataclass(frozen=True)
class ReviewCandidate:
    """One of the method's answers for a query: ``id`` (an individual, or new_whale: no known
    individual), its ``score`` (NaN: none), the name of the catalogue ``photo`` that speaks for it
    (None: a placeholder), and where the method verified that photo, its inlier ``lines``: (query
    x, y, photo x, y) each a share of its square's side, drawn between the two side by side (None:
    the photo alone)."""

    id: str
    score: float
    photo: str | None
    lines: tuple[tuple[float, float, float, float], ...] | None = None
    # the query photo the lines start from, where an encounter's other photo matched best (None: the query's)
    query: str | None = None

    @property
    def inliers(self) -> int | None:
        return None if self.lines is None else len(self.lines)


@dataclass(frozen=True)
class ReviewQuery:
    """A test photo to decide: its ``image`` name (its picture is the page's photo of that
    name), the method's ``candidates`` (best first), ``confidence`` (the rank-1 score, NaN: none)
    and whether it is ``accepted`` (auto-accepted: a known individual at rank 1, scored at or
    above the threshold). ``others``: the other photos of its encounter, decided with it (one
    decision, exported as a row for each photo)."""

    image: str
    candidates: list[ReviewCandidate]
    confidence: float
    accepted: bool
    others: tuple[str, ...] = ()


def format_score(value: float | None, score_name: str) -> str:
    """`value` as the page writes a `score_name` (a key of SCORE_FORMATS): plain text, empty
    where there is none."""
    if score_name not in SCORE_FORMATS:
        raise ValueError(f"unknown score {score_name!r}: expected one of {', '.join(SCORE_FORMATS)}")
    if value is None or not math.isfinite(value):
        return ""
    # a calibrated probability of 0.99995 is not a certainty, nor 2e-6 an impossibility
    if score_name == "probability" and not 0.001 <= value <= 0.999:
        return "< 0.001" if value < 0.001 else "> 0.999"
    return SCORE_FORMATS[score_name].format(value)


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
    threshold, how right that threshold was on validation, and how many a person still has to
    look at."""
    to_look_at = photos - accepted
    if auto_accept is None:
        return (f"Nothing is auto-accepted: a person has to look at every photo ({photos})." if not accepted else
                f"Auto-accepted: {accepted} of {photos} photos. A person still has to look at {to_look_at}.")
    asked = _percent(auto_accept.precision)
    if not math.isfinite(auto_accept.threshold):
        return (f"Nothing is auto-accepted: on validation, no threshold on the rank-1 {score_name} made the rank-1 "
                f"answers above it right {asked} of the time ({auto_accept.validation_queries} validation queries "
                f"with a known individual at rank 1), so a person has to look at every photo ({photos}).")
    if auto_accept.validation_accepted and math.isfinite(auto_accept.validation_precision):
        right = round(auto_accept.validation_precision * auto_accept.validation_accepted)
        reached = (f"right {100 * auto_accept.validation_precision:.1f}% of the time "
                   f"({right} of {auto_accept.validation_accepted}"
                   + (f"; from so few, at least {100 * auto_accept.lower_bound:.1f}% with 90% confidence)"
                      if math.isfinite(auto_accept.lower_bound) else ")"))
    else:
        reached = "none of them (no validation query reached it)"
    return (f"Auto-accepted: {accepted} of {photos} photos, whose rank-1 {score_name} is at least "
            f"{_threshold_text(auto_accept.threshold, score_name)}: on validation, rank-1 answers at or above it "
            f"were {reached} \N{EM DASH} asked for {asked}. A person still has to look at {to_look_at}.")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _raw(value: float | None) -> str:
    """A number as a page's data attributes hold it, for scripts and tests."""
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


def _check(queries: Sequence[ReviewQuery], photos: Mapping[str, str], score_name: str) -> None:
    """Raise ValueError on queries the page cannot show or keep decisions of."""
    if score_name not in SCORE_FORMATS:
        raise ValueError(f"unknown score {score_name!r}: expected one of {', '.join(SCORE_FORMATS)}")
    twice = sorted(image for image, n in Counter(image for query in queries
                                                 for image in (query.image, *query.others)).items() if n > 1)
    if twice:
        raise ValueError(f"review queries name the photo {twice[0]!r} twice: each photo is decided once")
    seen: dict[str, str] = {}
    for query in queries:
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
        named = [query.image, *query.others] + [candidate.photo for candidate in query.candidates
                                                if candidate.photo is not None]
        missing = [name for name in named if name not in photos]
        if missing:
            raise ValueError(f"{query.image}: no picture of {', '.join(map(repr, missing))} among the page's photos")
    for name, picture in photos.items():
        # anything else would be fetched: the page must show the same thing offline
        if not picture.startswith("data:image/"):
            raise ValueError(f"the picture of {name!r} is not an image data URI ({picture[:40]!r}...)")


STYLE = """
body { font-family: sans-serif; margin: 0; color: #222; background: #fff; }
header { position: sticky; top: 0; z-index: 1; background: #f6f6f6; border-bottom: 1px solid #ccc;
  padding: 10px 16px 8px; }
h1 { font-size: 19px; margin: 0 0 4px; }
header p { margin: 3px 0; font-size: 13px; line-height: 1.4; max-width: 1200px; }
p.help kbd, figcaption kbd { font-family: monospace; font-size: 12px; border: 1px solid #999; border-radius: 3px;
  padding: 0 4px; background: #fff; }
p.progress { font-weight: bold; }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; font-size: 13px; margin-top: 4px; }
.controls input { font-family: monospace; width: 16em; }
#message { color: #1c4f8a; font-weight: bold; }
#message[data-kind="error"] { color: #b42318; }
#message:empty { display: none; }
main { padding: 0 16px 60vh; }
section.query { border: 2px solid transparent; border-top: 1px solid #ccc; padding: 8px 6px 10px;
  border-left: 6px solid #ddd; content-visibility: auto; contain-intrinsic-size: auto 330px; }
section.query.current { border: 2px solid #2b6cb0; border-left: 6px solid #2b6cb0; background: #eef4fb; }
section.query[data-decision="confirmed"] { border-left-color: #2f9e44; }
section.query[data-decision="new"] { border-left-color: #7048e8; }
section.query[data-decision="unsure"] { border-left-color: #e8590c; }
section.query h2 { font-size: 13px; font-weight: normal; margin: 0 0 6px; }
section.query h2 b { font-family: monospace; font-size: 13px; overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #d3f9d8;
  color: #1b5e20; border: 1px solid #2f9e44; }
.status { font-weight: bold; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; min-width: 136px; font-size: 12px; text-align: center; }
figure img, figure .placeholder, figure .pair { display: block; height: 128px; width: 128px; margin: 0 auto;
  object-fit: contain; border: 4px solid transparent; background: #eee; }
figure .pair { position: relative; width: 204px; height: 100px; }
figure .pair img { position: absolute; top: 0; width: 100px; height: 100px; border: 0; }
figure .pair img.photo { left: 104px; }
figure .pair svg { position: absolute; left: 0; top: 0; width: 204px; height: 100px; }
figure .pair path { fill: none; stroke: #3cdc3c; }
figure .pair path.lines { stroke-width: 0.6; }
figure .pair path.ends { stroke-width: 3; stroke-linecap: round; }
figure.query-photo img { height: 160px; width: 160px; border-color: #2b6cb0; }
figure.encounter-photo { min-width: 0; }
figure.encounter-photo img { height: 100px; width: 100px; border-color: #9ec5ee; }
figure .placeholder { width: 128px; display: flex; flex-direction: column; justify-content: center;
  align-items: center; border-style: dashed; border-color: #999; color: #555; }
figure.candidate { cursor: pointer; }
figure.candidate:hover > img, figure.candidate:hover > .placeholder, figure.candidate:hover > .pair {
  border-color: #a5c8ee; }
figure.candidate[data-chosen="true"] > img, figure.candidate[data-chosen="true"] > .placeholder,
figure.candidate[data-chosen="true"] > .pair { border: 4px solid #2f9e44; }
figcaption { margin-top: 3px; overflow-wrap: anywhere; }
figcaption .id { font-family: monospace; }
.separator { width: 2px; align-self: stretch; background: #ccc; }
"""
# The page's behaviour. It reads everything from the sections' data attributes (so nothing is
# interpolated into the script) and keeps them up to date for scripts and tests.
SCRIPT = r"""
(function () {
  "use strict";
  const body = document.body;
  const queue = document.getElementById("queue");
  const sections = Array.from(queue.querySelectorAll("section.query"));  // the original order
  const byImage = new Map(sections.map(function (s) { return [s.dataset.image, s]; }));
  const imageOfNewId = new Map();
  sections.forEach(function (s) {
    if (!imageOfNewId.has(s.dataset.newId)) imageOfNewId.set(s.dataset.newId, s.dataset.image);
  });
  const knownIds = new Set(Array.from(document.querySelectorAll("#known-ids option"),
                                      function (o) { return o.value; }));
  const progress = document.getElementById("progress");
  const message = document.getElementById("message");
  const typed = document.getElementById("typed-id");
  const orderButton = document.getElementById("order");
  const NEW_WHALE = "new_whale";
  // A person's decisions by image: {decision, id, sameAs, seq}; seq orders the markings in time.
  let decisions = {};
  let seq = 0;
  let current = null;
  let storable = true;

  // kind "error": what a person asked for was not done
  function say(text, kind) { message.textContent = text; message.dataset.kind = kind || ""; }

  function decisionOf(section) {
    const own = decisions[section.dataset.image];
    if (own) return {decision: own.decision, id: own.id, sameAs: own.sameAs || "", by: "person"};
    if (section.dataset.accepted === "true") {
      return {decision: "confirmed", id: section.dataset.rank1, sameAs: "", by: "auto"};
    }
    return {decision: "", id: "", sameAs: "", by: ""};
  }

  function statusText(d) {
    if (d.decision === "confirmed") return (d.by === "auto" ? "auto-accepted: " : "confirmed: ") + d.id;
    if (d.decision === "new") return "new individual " + d.id + (d.sameAs ? " (same as " + d.sameAs + ")" : "");
    if (d.decision === "unsure") return "not sure";
    return "to decide";
  }

  function paint(section) {
    const d = decisionOf(section);
    section.dataset.decision = d.decision;
    section.dataset.decidedId = d.id;
    section.dataset.by = d.by;
    section.dataset.sameAs = d.sameAs;
    section.querySelector(".status").textContent = statusText(d);
    section.querySelectorAll("figure.candidate").forEach(function (c) {
      const chosen = (d.decision === "confirmed" && c.dataset.id === d.id) ||
                     (d.decision === "new" && !d.sameAs && c.dataset.id === NEW_WHALE);
      c.dataset.chosen = chosen ? "true" : "false";
    });
  }

  function paintProgress() {
    let toLookAt = 0, decided = 0, unsure = 0, accepted = 0, overruled = 0;
    sections.forEach(function (s) {
      const own = decisions[s.dataset.image];
      if (s.dataset.accepted === "true") {
        accepted += 1;
        if (own) overruled += 1;
      } else {
        toLookAt += 1;
        if (own) decided += 1;
        if (own && own.decision === "unsure") unsure += 1;
      }
    });
    progress.textContent = "Decided " + decided + " of " + toLookAt + " to look at" +
      (unsure ? " (" + unsure + " not sure)" : "") +
      (accepted ? "; " + accepted + " auto-accepted" : "") +
      (overruled ? ", " + overruled + " of them decided by a person" : "") + ".";
  }

  function save() {
    if (!storable) return;
    try {
      localStorage.setItem(body.dataset.storageKey, JSON.stringify(
        {decisions: decisions, seq: seq, current: current ? current.dataset.image : null}));
    } catch (error) {
      storable = false;
      say("This browser does not keep the decisions (" + error.name + "): export them before closing the page.",
          "error");
    }
  }

  function load() {
    let kept = null;
    try {
      kept = JSON.parse(localStorage.getItem(body.dataset.storageKey) || "null");
    } catch (error) {
      say("The decisions kept in this browser could not be read (" + error.name + "): starting afresh.", "error");
    }
    if (!kept || typeof kept !== "object") return null;
    const valid = {confirmed: true, new: true, unsure: true};
    Object.keys(kept.decisions || {}).forEach(function (image) {
      const d = kept.decisions[image];
      if (byImage.has(image) && d && valid[d.decision] === true && typeof d.id === "string") {
        decisions[image] = {decision: d.decision, id: d.id, sameAs: d.sameAs || "", seq: Number(d.seq) || 0};
        seq = Math.max(seq, decisions[image].seq);
      }
    });
    seq = Math.max(seq, Number(kept.seq) || 0);
    return byImage.get(kept.current) || null;
  }

  function shown() { return Array.from(queue.querySelectorAll("section.query")); }

  function select(section) {
    if (!section) return;
    if (current) { current.classList.remove("current"); current.dataset.current = "false"; }
    current = section;
    current.classList.add("current");
    current.dataset.current = "true";
    current.scrollIntoView({block: "center"});
  }

  function move(step) {
    const order = shown();
    const at = order.indexOf(current) + step;
    if (at >= 0 && at < order.length) { select(order[at]); save(); }
  }

  function decide(section, decision, id, sameAs) {
    seq += 1;
    decisions[section.dataset.image] = {decision: decision, id: id, sameAs: sameAs || "", seq: seq};
    paint(section);
    paintProgress();
    save();
  }

  function decideAndMove(section, decision, id) {
    decide(section, decision, id, "");
    select(section);
    move(1);
    save();
  }

  function confirmCandidate(section, candidate) {
    if (candidate.dataset.id === NEW_WHALE) decideAndMove(section, "new", section.dataset.newId);
    else decideAndMove(section, "confirmed", candidate.dataset.id);
  }

  function confirmRank(rank) {
    const candidate = current.querySelector('figure.candidate[data-rank="' + rank + '"]');
    if (!candidate) { say("This photo has no candidate " + rank + ".", "error"); return; }
    confirmCandidate(current, candidate);
  }

  // The new ids other photos were decided with, the most recently marked first.
  function newIdsOfOthers(section) {
    const latest = new Map();
    Object.keys(decisions).forEach(function (image) {
      const d = decisions[image];
      if (image === section.dataset.image || d.decision !== "new" || d.id === section.dataset.newId) return;
      if (!latest.has(d.id) || latest.get(d.id) < d.seq) latest.set(d.id, d.seq);
    });
    return Array.from(latest.keys()).sort(function (a, b) { return latest.get(b) - latest.get(a); });
  }

  // The first press takes the most recent new individual; a further press on the same photo an earlier one.
  // It stays on the photo so that a person sees which one it is and can press again.
  function sameAs() {
    const ids = newIdsOfOthers(current);
    if (!ids.length) { say("No other photo is decided new yet: nothing to be the same as.", "error"); return; }
    const own = decisions[current.dataset.image];
    const at = own && own.decision === "new" && own.sameAs ? ids.indexOf(own.id) : -1;
    const id = ids[(at + 1) % ids.length];
    decide(current, "new", id, imageOfNewId.get(id) || id);
    say("Same as " + (imageOfNewId.get(id) || id) + (ids.length > 1 ? ": press s again for an earlier one, " : ": ") +
        "j for the next photo.");
  }

  function clear(section) {
    if (!decisions[section.dataset.image]) return;
    delete decisions[section.dataset.image];
    paint(section);
    paintProgress();
    save();
  }

  function csvField(value) {
    return /[",\r\n]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }

  function decisionsCsv() {
    const lines = ["Image,decision,Id,by"];
    sections.forEach(function (s) {
      const d = decisionOf(s);
      if (!d.decision) return;
      // an encounter's photos are decided together: a row for each
      [s.dataset.image].concat(JSON.parse(s.dataset.others || "[]")).forEach(function (image) {
        lines.push([image, d.decision, d.decision === "unsure" ? "" : d.id, d.by].map(csvField).join(","));
      });
    });
    return lines.join("\n") + "\n";
  }

  function exportCsv() {
    const text = decisionsCsv();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], {type: "text/csv;charset=utf-8"}));
    link.download = "decisions.csv";
    body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    say("Exported " + (text.split("\n").length - 2) + " decided photos to decisions.csv.");
  }

  function toggleOrder() {
    const byIndividual = body.dataset.order !== "individual";
    const order = sections.slice();
    if (byIndividual) {
      order.sort(function (a, b) {
        const ka = [a.dataset.rank1, a.dataset.image], kb = [b.dataset.rank1, b.dataset.image];
        return ka[0] < kb[0] ? -1 : ka[0] > kb[0] ? 1 : ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0;
      });
    }
    order.forEach(function (s) { queue.appendChild(s); });
    body.dataset.order = byIndividual ? "individual" : "queue";
    orderButton.textContent = byIndividual ? "Order: by individual (o)" : "Order: least sure first (o)";
    select(current);
  }

  function confirmTyped() {
    const id = typed.value.trim();
    if (!id) { typed.blur(); return; }
    if (!knownIds.has(id)) {
      say(id + " is not a known individual: type one of the catalogue's ids.", "error");
      return;
    }
    typed.value = "";
    typed.blur();
    say("");
    decideAndMove(current, "confirmed", id);
  }

  const actions = {
    "1": function () { confirmRank(1); }, "2": function () { confirmRank(2); }, "3": function () { confirmRank(3); },
    "4": function () { confirmRank(4); }, "5": function () { confirmRank(5); },
    n: function () { decideAndMove(current, "new", current.dataset.newId); },
    s: sameAs,
    u: function () { decideAndMove(current, "unsure", ""); },
    Backspace: function () { clear(current); }, Delete: function () { clear(current); },
    j: function () { move(1); }, ArrowRight: function () { move(1); }, ArrowDown: function () { move(1); },
    k: function () { move(-1); }, ArrowLeft: function () { move(-1); }, ArrowUp: function () { move(-1); },
    e: exportCsv,
    o: toggleOrder,
    i: function () { typed.focus(); }
  };

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    if (!current || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!Object.prototype.hasOwnProperty.call(actions, event.key)) return;
    event.preventDefault();
    say("");
    actions[event.key]();
  });

  typed.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); confirmTyped(); }
    else if (event.key === "Escape") { typed.value = ""; typed.blur(); }
  });

  queue.addEventListener("click", function (event) {
    const section = event.target.closest("section.query");
    if (!section) return;
    const candidate = event.target.closest("figure.candidate");
    select(section);
    if (candidate) confirmCandidate(section, candidate);
    else save();
  });

  document.getElementById("export").addEventListener("click", function (event) { exportCsv(); event.target.blur(); });
  orderButton.addEventListener("click", function (event) { toggleOrder(); event.target.blur(); });

  // Each photo's picture is in the page once: every image showing it is handed it here, and
  // loading="lazy" leaves the decoding of those far from the view for later.
  const pictures = JSON.parse(document.getElementById("photos").textContent);
  document.querySelectorAll("img[data-photo-name]").forEach(function (img) {
    img.src = pictures[img.dataset.photoName];
  });

  if (!sections.length) return;
  const kept = load();
  sections.forEach(paint);
  paintProgress();
  select(kept || sections.find(function (s) { return !decisionOf(s).decision; }) || sections[0]);
})();
"""


def _picture(name: str | None, alt: str, placeholder: str, kind: str = "") -> str:
    """A photo's image, its picture handed over by the script from the page's photos (`name`), or a placeholder."""
    if name is None:
        return f'<div class="placeholder" role="img" aria-label="{_e(alt)}">{placeholder}</div>'
    kind = f' class="{kind}"' if kind else ""
    return f'<img{kind} data-photo-name="{_e(name)}" alt="{_e(alt)}" title="{_e(name)}" loading="lazy">'


# The SVG's units: each photo a PAIR_SIDE square, the catalogue photo PAIR_GAP to the right of the
# query, as the style's .pair places them (in pixels), so that a row of five candidates fits 1280.
PAIR_SIDE, PAIR_GAP = 100, 4


def _pair(query: str, candidate: ReviewCandidate, alt: str) -> str:
    """The query and a catalogue photo side by side, the inlier matches drawn between them."""
    lines, ends = [], []
    for qx, qy, px, py in candidate.lines or ():
        x1, y1 = qx * PAIR_SIDE, qy * PAIR_SIDE
        x2, y2 = PAIR_SIDE + PAIR_GAP + px * PAIR_SIDE, py * PAIR_SIDE
        lines.append(f"M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}")
        ends.append(f"M{x1:.1f} {y1:.1f}h0M{x2:.1f} {y2:.1f}h0")
    width = 2 * PAIR_SIDE + PAIR_GAP
    # Two paths, not an element a line: a run's page draws hundreds of thousands of lines.
    query = candidate.query or query
    return (f'<div class="pair" role="img" aria-label="{_e(alt)}">{_picture(query, f"query {query}", "")}'
            f'{_picture(candidate.photo, alt, "", "photo")}'
            f'<svg viewBox="0 0 {width} {PAIR_SIDE}" aria-hidden="true"><path class="lines" d="{"".join(lines)}"/>'
            f'<path class="ends" d="{"".join(ends)}"/></svg></div>')


def _candidate(query: str, rank: int, candidate: ReviewCandidate, score_name: str) -> str:
    attributes = (f'class="candidate" data-id="{_e(candidate.id)}" data-rank="{rank}" '
                  f'data-score="{_raw(candidate.score)}"')
    if candidate.photo is not None:
        attributes += f' data-photo="{_e(candidate.photo)}"'
    if candidate.inliers is not None:
        attributes += f' data-inliers="{int(candidate.inliers)}"'
    if candidate.id == NEW_WHALE:
        placeholder, alt = "new_whale<br><small>a new individual</small>", "new_whale: a new individual"
    else:
        placeholder, alt = "no photo", f"{candidate.id}: no photo"
        if candidate.photo is not None:
            alt = (f"{candidate.id}, catalogue photo {candidate.photo}" if candidate.inliers is None else
                   f"the query beside {candidate.id}'s catalogue photo {candidate.photo}, "
                   f"{candidate.inliers} inlier matches")
    score = format_score(candidate.score, score_name)
    caption = (f'<kbd>{rank}</kbd> <span class="id">{_e(candidate.id)}</span>'
               + (f"<br>{_e(score_name)} {_e(score)}" if score else "")
               + (f"<br>{int(candidate.inliers)} inlier matches" if candidate.inliers is not None else ""))
    picture = (_pair(query, candidate, alt) if candidate.lines is not None and candidate.photo is not None
               else _picture(candidate.photo, alt, placeholder))
    return f"<figure {attributes}>{picture}<figcaption>{caption}</figcaption></figure>"


def _query_section(position: int, query: ReviewQuery, score_name: str) -> str:
    rank1 = query.candidates[0].id if query.candidates else ""
    accepted = "true" if query.accepted else "false"
    # the page as written, before its script runs: an auto-accepted photo is confirmed
    decision, decided_id, by, status = (("confirmed", rank1, "auto", f"auto-accepted: {rank1}") if query.accepted
                                        else ("", "", "", "to decide"))
    confidence = format_score(query.confidence, score_name)
    heading = (f'<h2>{position}. <b>{_e(query.image)}</b>'
               + (f" &middot; rank-1 {_e(score_name)} {_e(confidence)}" if confidence else "")
               + (' <span class="badge">auto-accepted</span>' if query.accepted else "")
               + f' &middot; <span class="status">{_e(status)}</span></h2>')
    encounter = "".join(f'<figure class="encounter-photo">{_picture(other, f"same encounter: {other}", "")}'
                        f'<figcaption>same encounter<br><span class="id">{_e(other)}</span></figcaption></figure>'
                        for other in query.others)
    figures = [f'<figure class="query-photo">{_picture(query.image, f"query {query.image}", "")}'
               f'<figcaption>query<br><span class="id">{_e(query.image)}</span></figcaption></figure>{encounter}',
               '<div class="separator"></div>']
    figures += [_candidate(query.image, rank, candidate, score_name)
                for rank, candidate in enumerate(query.candidates, start=1)]
    return (f'<section class="query" data-image="{_e(query.image)}" '
            f'data-new-id="{_e(new_individual_id(query.image))}" data-rank1="{_e(rank1)}" '
            f'data-confidence="{_raw(query.confidence)}" data-accepted="{accepted}" '
            f'data-others="{_e(json.dumps(list(query.others)))}" '
            f'data-decision="{decision}" data-decided-id="{_e(decided_id)}" data-by="{by}" data-same-as="" '
            f'data-current="false">{heading}<div class="row">{"".join(figures)}</div></section>')


HELP = ("Keys: <kbd>1</kbd>&ndash;<kbd>5</kbd> confirm that candidate (new_whale: a new individual) &middot; "
        "<kbd>n</kbd> new individual &middot; <kbd>s</kbd> same as another photo decided new (again: an earlier one) "
        "&middot; <kbd>u</kbd> not sure &middot; <kbd>Backspace</kbd> clear &middot; <kbd>j</kbd> <kbd>&rarr;</kbd> "
        "<kbd>&darr;</kbd> next &middot; <kbd>k</kbd> <kbd>&larr;</kbd> <kbd>&uarr;</kbd> previous &middot; "
        "<kbd>i</kbd> type a known id, <kbd>Enter</kbd> &middot; <kbd>o</kbd> order least sure first / by "
        "individual &middot; <kbd>e</kbd> export decisions.csv. A click on a candidate confirms it. Decisions are "
        "kept in this browser and come back on reload.")


def render_review_page(queries: Sequence[ReviewQuery], *, photos: Mapping[str, str], run: str, method: str,
                       score_name: str, auto_accept: AutoAccept | None, known_ids: Sequence[str]) -> str:
    """The page's HTML.

    One section a query, in the order given (least sure first), each photo shown by its picture
    in `photos` (name: a data URI; every query and candidate photo named); `score_name` (a key of
    SCORE_FORMATS) is how the scores are labelled and written; `run` and `method` title the page
    and, with the queries' images, key its decisions in the browser (`storage_key`); `auto_accept`
    is stated in the header (None: no threshold); `known_ids` are the ids a person may type.
    Raises ValueError on queries the page cannot show (`_check`)."""
    _check(queries, photos, score_name)
    used = ({image for query in queries for image in (query.image, *query.others)}
            | {c.photo for query in queries for c in query.candidates if c.photo})
    # "</script" or "<!--" in a name would end or derail the script element: JSON may write < as \u003c
    pictures = json.dumps({name: photos[name] for name in sorted(used)}).replace("<", "\\u003c")
    images = [query.image for query in queries]
    # counted in photos: an encounter's are decided together, but each is a photo looked at
    photos = sum(1 + len(query.others) for query in queries)
    accepted = sum(1 + len(query.others) for query in queries if query.accepted)
    statement = auto_accept_statement(auto_accept, photos, accepted, score_name)
    sections = [_query_section(position, query, score_name) for position, query in enumerate(queries, start=1)]
    if not sections:
        sections = ['<p class="empty">No photo to review.</p>']
    options = "".join(f'<option value="{_e(individual)}">' for individual in sorted(set(known_ids) - {NEW_WHALE}))
    title = f"Review: {run} \N{MIDDLE DOT} {method}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f'<body data-run="{_e(run)}" data-method="{_e(method)}" data-score-name="{_e(score_name)}" '
            f'data-storage-key="{_e(storage_key(run, method, images))}" data-order="queue">\n'
            f"<header>\n<h1>{_e(title)}</h1>\n"
            f'<p class="summary">{photos} test photos'
            + (f" in {len(queries)} queries (an encounter's photos are one)" if photos > len(queries) else "")
            + f', each beside the method\'s {N_ANSWERS} candidates, '
            f"best first, least sure photo first. {_e(statement)}</p>\n"
            f'<p class="help">{HELP}</p>\n<p class="progress" id="progress"></p>\n'
            '<div class="controls"><button type="button" id="order">Order: least sure first (o)</button>'
            '<button type="button" id="export">Export decisions.csv (e)</button>'
            '<label>Known id (i): <input id="typed-id" list="known-ids" autocomplete="off" spellcheck="false" '
            'placeholder="type an id, Enter"></label><span id="message" role="status"></span></div>\n'
            f'<datalist id="known-ids">{options}</datalist>\n</header>\n'
            '<main id="queue">\n' + "\n".join(sections) + "\n</main>\n"
            f'<script type="application/json" id="photos">{pictures}</script>\n'
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")


# Pixels on the long side of a photo's picture on the review page: a reviewer needs the pattern's
# detail, and a run's page holds every test photo and every catalogue photo that speaks for one.
REVIEW_SIDE = 160


def review_queries(found, shown, threshold: float, accept_at: float, skip: set[str],
                   encounters: dict[str, str] | None = None) -> tuple[list, dict[str, str]]:
    """The test queries of `found` (`evidence.GalleryQueries`) as the review page shows them,
    least sure first, and the pictures of the photos they show (name: JPEG data URI): each query
    with its five answers shown by `shown` (`evidence.MethodEvidence`), verified photos with their
    inlier lines; rank 1 accepted where it is a known individual scored at or above `accept_at`.
    Sure means far past the new_whale `threshold`, either way (`evidence.confidence`). Photos in
    `skip` (already decided) are left out. The photos of one of `encounters` (photo: encounter)
    are one query, answered alike: each answer is shown by the photo of theirs that matched it
    best."""
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
    leaves to a person. `files`: where the method's evidence is (`evidence.method_evidence`).
    Photos already decided (`reviewed`) are not asked again; the photos of one of `encounters`
    (the data folder's encounters.csv) are one query (`review_queries`)."""
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
