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

  // The new ids other photos were decided with: those of the photos proposed as the same new
  // individual first, then the most recently marked first.
  function newIdsOfOthers(section) {
    const latest = new Map();
    const proposed = new Set(JSON.parse(section.dataset.proposed || "[]"));
    const ofProposed = new Set();
    Object.keys(decisions).forEach(function (image) {
      const d = decisions[image];
      if (image === section.dataset.image || d.decision !== "new" || d.id === section.dataset.newId) return;
      if (!latest.has(d.id) || latest.get(d.id) < d.seq) latest.set(d.id, d.seq);
      if (proposed.has(image)) ofProposed.add(d.id);
    });
    return Array.from(latest.keys()).sort(function (a, b) {
      return (ofProposed.has(b) - ofProposed.has(a)) || (latest.get(b) - latest.get(a));
    });
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


  // The full-screen view: the current photo beside one of its candidates, drawn as its row draws
  // the pair (the same boxes and inlier lines), scaled to the screen and zoomed by transform, so
  // that the lines stay on the photos at any zoom. The thumbnails show at once; each photo file
  // replaces its thumbnail once loaded, where this browser can read it (not on another machine
  // than the photos, nor a format browsers do not show, such as TIFF).
  const pictures = JSON.parse(document.getElementById("photos").textContent);
  const viewer = document.getElementById("viewer");
  const viewerFrame = document.getElementById("viewer-frame");
  const viewerTitle = document.getElementById("viewer-title");
  const viewerNote = document.getElementById("viewer-note");
  const ZOOM_STEP = 1.5, MOST_ZOOM = 64;
  let view = null;  // {stage, width, height, fit, zoom, x, y}

  function viewerOpen() { return !viewer.hidden; }

  function photoImage(name, kind) {
    const img = document.createElement("img");
    img.dataset.photoName = name;
    img.dataset.shown = "thumbnail";
    img.alt = name;
    img.title = name;
    if (kind) img.className = kind;
    img.src = pictures[name].thumbnail;
    return img;
  }

  // The pair of the current photo and its `candidate`: the row's own drawing where the candidate
  // was verified, else the two photos (or the query alone, where the candidate has no photo or
  // there is none).
  function pairOf(candidate) {
    const drawn = candidate && candidate.querySelector(".pair");
    if (drawn) {
      const pair = drawn.cloneNode(true);
      pair.querySelectorAll("img").forEach(function (img) { img.removeAttribute("loading"); });
      return pair;
    }
    const pair = document.createElement("div");
    pair.className = "pair";
    pair.appendChild(photoImage(current.dataset.image, ""));
    if (candidate && candidate.dataset.photo) pair.appendChild(photoImage(candidate.dataset.photo, "photo"));
    return pair;
  }

  function showOriginal(img, stage) {
    const picture = pictures[img.dataset.photoName];
    img.dataset.shown = "thumbnail";
    if (!picture.original) {
      viewerNote.textContent = "(" + img.dataset.photoName + ": no photo file, its thumbnail)";
      return;
    }
    const full = new Image();
    full.onload = function () {
      if (!view || view.stage !== stage) return;
      img.src = picture.original;
      img.dataset.shown = "original";
    };
    full.onerror = function () {
      if (!view || view.stage !== stage) return;
      img.dataset.shown = "unreachable";
      viewerNote.textContent = "(" + img.dataset.photoName + ": its file cannot be shown here, on another " +
        "machine than the photos or in a format browsers do not show: its " + "thumbnail instead)";
    };
    full.src = picture.original;
  }

  function place() {
    const scale = view.fit * view.zoom;
    view.stage.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + scale + ")";
    view.stage.style.setProperty("--scale", String(scale));
  }

  function fitView() {
    const frame = viewerFrame.getBoundingClientRect();
    view.fit = Math.min(frame.width / view.width, frame.height / view.height);
    view.zoom = 1;
    view.x = (frame.width - view.width * view.fit) / 2;
    view.y = (frame.height - view.height * view.fit) / 2;
    place();
  }

  // Zoom by `factor` about the point (x, y) of the frame, which stays where it is.
  function zoomAt(factor, x, y) {
    const zoom = Math.min(MOST_ZOOM, Math.max(1, view.zoom * factor));
    const applied = zoom / view.zoom;
    view.x = x - (x - view.x) * applied;
    view.y = y - (y - view.y) * applied;
    view.zoom = zoom;
    place();
  }

  function zoomAtCentre(factor) {
    const frame = viewerFrame.getBoundingClientRect();
    zoomAt(factor, frame.width / 2, frame.height / 2);
  }

  function pan(dx, dy) { view.x += dx; view.y += dy; place(); }

  function showCandidate(rank) {
    const candidate = current.querySelector('figure.candidate[data-rank="' + rank + '"]');
    if (!candidate && view) { viewerNote.textContent = "(this photo has no candidate " + rank + ")"; return; }
    const stage = pairOf(candidate);
    stage.id = "viewer-stage";
    viewerFrame.replaceChildren(stage);
    viewerNote.textContent = !candidate ? "(this photo has no candidate)" :
      candidate.dataset.photo ? "" : "(candidate " + rank + " has no photo)";
    viewer.dataset.rank = candidate ? String(rank) : "";
    viewerTitle.textContent = current.dataset.image + (!candidate ? "" : " beside candidate " + rank + ", " +
      candidate.dataset.id + (candidate.dataset.photo ? " (" + candidate.dataset.photo + ")" : "") +
      (candidate.dataset.inliers ? ", " + candidate.dataset.inliers + " inlier matches" : ""));
    view = {stage: stage, width: stage.offsetWidth, height: stage.offsetHeight, fit: 1, zoom: 1, x: 0, y: 0};
    fitView();
    stage.querySelectorAll("img[data-photo-name]").forEach(function (img) { showOriginal(img, stage); });
  }

  // The candidate a person looks at: the one chosen, where it has a photo, else the first with one.
  function viewedRank() {
    const withPhoto = Array.from(current.querySelectorAll("figure.candidate[data-photo]"));
    const chosen = withPhoto.find(function (c) { return c.dataset.chosen === "true"; });
    return (chosen || withPhoto[0] || {dataset: {rank: "1"}}).dataset.rank;
  }

  function openViewer() {
    viewer.hidden = false;
    showCandidate(viewedRank());
  }

  function closeViewer() {
    viewer.hidden = true;
    viewerFrame.replaceChildren();
    viewer.dataset.rank = "";
    view = null;
  }

  const PAN_STEP = 0.1;
  const viewerActions = {
    Escape: closeViewer, v: closeViewer,
    "+": function () { zoomAtCentre(ZOOM_STEP); }, "=": function () { zoomAtCentre(ZOOM_STEP); },
    "-": function () { zoomAtCentre(1 / ZOOM_STEP); }, "0": fitView,
    l: function () { viewerFrame.classList.toggle("no-lines"); },
    ArrowLeft: function () { pan(viewerFrame.clientWidth * PAN_STEP, 0); },
    ArrowRight: function () { pan(-viewerFrame.clientWidth * PAN_STEP, 0); },
    ArrowUp: function () { pan(0, viewerFrame.clientHeight * PAN_STEP); },
    ArrowDown: function () { pan(0, -viewerFrame.clientHeight * PAN_STEP); }
  };
  ["1", "2", "3", "4", "5"].forEach(function (rank) { viewerActions[rank] = function () { showCandidate(rank); }; });

  // keys while the view is open: its own, and no decision (close it first)
  function viewerKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    if (Object.prototype.hasOwnProperty.call(viewerActions, event.key)) viewerActions[event.key]();
  }

  viewerFrame.addEventListener("wheel", function (event) {
    if (!view) return;
    event.preventDefault();
    const frame = viewerFrame.getBoundingClientRect();
    zoomAt(Math.pow(ZOOM_STEP, -event.deltaY / 100), event.clientX - frame.left, event.clientY - frame.top);
  }, {passive: false});

  let dragging = null;
  viewerFrame.addEventListener("pointerdown", function (event) {
    if (!view) return;
    dragging = {x: event.clientX, y: event.clientY};
    viewerFrame.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  viewerFrame.addEventListener("pointermove", function (event) {
    if (!dragging) return;
    pan(event.clientX - dragging.x, event.clientY - dragging.y);
    dragging = {x: event.clientX, y: event.clientY};
  });
  ["pointerup", "pointercancel"].forEach(function (type) {
    viewerFrame.addEventListener(type, function () { dragging = null; });
  });
  window.addEventListener("resize", function () { if (view) fitView(); });

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
    i: function () { typed.focus(); },
    v: openViewer
  };

  document.addEventListener("keydown", function (event) {
    if (viewerOpen()) { viewerKey(event); return; }
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

  if (!sections.length) return;
  const kept = load();
  sections.forEach(paint);
  paintProgress();
  select(kept || sections.find(function (s) { return !decisionOf(s).decision; }) || sections[0]);
})();
