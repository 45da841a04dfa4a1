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
