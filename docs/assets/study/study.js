/* The Study page: the site's cards scheduled by FSRS (ts-fsrs), with the review log kept in this browser.
 *
 * Loaded on every page (extra_javascript). On the Study page (an element #gdl-study) it loads the cards
 * (downloads/study/cards.json, written by gdl_site.study) and the scheduler (downloads/study/ts-fsrs.umd.js)
 * and runs a session; on a page with cards it adds "Mark as known" / "Study this card" to each card
 * (through downloads/study/index.json, each card's page#anchor and GUID) and "Review this page's cards".
 *
 * The log is the truth: each review is (card GUID, time, grade) and a card's schedule is the replay of its
 * reviews through ts-fsrs with fuzzing off, so two logs merge by taking the union of their reviews, and an
 * undo removes one review. Each stored review also carries the scheduler's state after it, for a reader
 * reading the export. The stored text holds one review a line, so a damaged value loses only its damaged
 * lines. Nothing is sent anywhere: the only requests are for the two files above, on the site's own host.
 */
(() => {
  "use strict";

  const SCRIPT_URL = document.currentScript ? document.currentScript.src : location.href;
  const ROOT = new URL("../../", SCRIPT_URL);            // this file is <root>/assets/study/study.js
  const STORE = "gdl-ref.study";                         // the log
  const ASIDE = "gdl-ref.study.set-aside";              // a value the page could not read whole, kept as it was
  const FORMAT = "gdl-ref-study-log";
  const VERSION = 1;
  const DATA_VERSION = 1;                                // of cards.json
  const DEFAULT_NEW_PER_DAY = 20;
  const LEARN_AHEAD_MS = 20 * 60 * 1000;                 // a learning card due within 20 minutes is shown (as Anki does)
  const GRADES = [[1, "Again"], [2, "Hard"], [3, "Good"], [4, "Easy"]];
  const STATES = ["New", "Learning", "Review", "Relearning"];
  const GUID_MAX = 200;

  // ------------------------------------------------------------------------------------------ the log text

  /** A review as stored, or null when the value is not one: {guid, time (ISO), grade 1-4, state?}. */
  function readReview(value) {
    if (!value || typeof value !== "object" || Array.isArray(value)) return null;
    const { guid, time, grade } = value;
    if (typeof guid !== "string" || !guid || guid.length > GUID_MAX) return null;
    if (typeof time !== "string" || Number.isNaN(Date.parse(time))) return null;
    if (!Number.isInteger(grade) || grade < 1 || grade > 4) return null;
    const review = { guid, time: new Date(time).toISOString(), grade };
    if (value.state && typeof value.state === "object") review.state = value.state;
    return review;
  }

  const reviewKey = (r) => `${r.guid}|${r.time}|${r.grade}`;

  function emptyLog() {
    return { settings: { newPerDay: DEFAULT_NEW_PER_DAY }, known: [], reviews: [] };
  }

  /** The log as text: a JSON document with one review a line (so a damaged line costs one review). */
  function logText(log) {
    const head = { format: FORMAT, version: VERSION, settings: log.settings, known: log.known };
    const lines = log.reviews.map((r) => JSON.stringify(r));
    return JSON.stringify(head).slice(0, -1) + ',"reviews":[\n' + lines.join(",\n") + "\n]}\n";
  }

  /**
   * Read a log's text: {log, problem}. problem is null when every part was read; otherwise
   * {kind: "corrupt" | "foreign" | "newer", lost: number of unreadable review lines, readable}.
   * A corrupt text is read line by line and every line that is a review is kept.
   */
  function parseLog(text) {
    const log = emptyLog();
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      return salvage(text);
    }
    if (!doc || typeof doc !== "object" || doc.format !== FORMAT || !Array.isArray(doc.reviews)) {
      return { log, problem: { kind: "foreign", lost: 0, readable: 0 } };
    }
    if (!Number.isInteger(doc.version) || doc.version > VERSION) {
      return { log, problem: { kind: "newer", version: doc.version, lost: doc.reviews.length, readable: 0 } };
    }
    let lost = 0;
    for (const value of doc.reviews) {
      const review = readReview(value);
      if (review) log.reviews.push(review); else lost += 1;
    }
    readHead(doc, log);
    const problem = lost ? { kind: "corrupt", lost, readable: log.reviews.length } : null;
    return { log, problem };
  }

  function readHead(doc, log) {
    const perDay = doc.settings && doc.settings.newPerDay;
    if (Number.isInteger(perDay) && perDay >= 0 && perDay <= 9999) log.settings.newPerDay = perDay;
    if (Array.isArray(doc.known)) log.known = [...new Set(doc.known.filter((g) => typeof g === "string" && g && g.length <= GUID_MAX))];
  }

  function salvage(text) {
    const log = emptyLog();
    let lost = 0;
    for (const raw of String(text).split("\n")) {
      const line = raw.trim().replace(/,$/, "");
      if (!line.startsWith('{"guid"') && !line.includes('"grade"')) continue;
      let review = null;
      try { review = readReview(JSON.parse(line)); } catch (error) { review = null; }
      if (review) log.reviews.push(review); else lost += 1;
    }
    const head = String(text).split("\n", 1)[0].replace(/,"reviews":\[\s*$/, "}");
    try { readHead(JSON.parse(head), log); } catch (error) { /* the settings are lost; the defaults apply */ }
    return { log, problem: { kind: "corrupt", lost: Math.max(lost, 1), readable: log.reviews.length } };
  }

  /** Union of two review lists (no review twice), in time order. */
  function mergeReviews(into, extra) {
    const seen = new Set(into.map(reviewKey));
    let added = 0;
    const out = into.slice();
    for (const review of extra) {
      const key = reviewKey(review);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(review);
      added += 1;
    }
    out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    return { reviews: out, added };
  }

  // ------------------------------------------------------------------------------------------ storage

  /** localStorage, or null where the browser refuses it (private mode, a setting). */
  function storage() {
    try {
      const s = window.localStorage;
      const probe = `${STORE}.probe`;
      s.setItem(probe, "1");
      s.removeItem(probe);
      return s;
    } catch (error) {
      return null;
    }
  }

  // ------------------------------------------------------------------------------------------ scheduling

  function stateOf(card) {
    return {
      due: card.due.toISOString(), stability: card.stability, difficulty: card.difficulty,
      state: STATES[card.state], reps: card.reps, lapses: card.lapses, scheduled_days: card.scheduled_days,
      learning_steps: card.learning_steps, last_review: card.last_review ? card.last_review.toISOString() : null,
    };
  }

  /** Each card's schedule (a ts-fsrs Card) from the log, filling each review's state after it. */
  function replay(F, scheduler, reviews) {
    const cards = new Map();
    for (const review of reviews) {
      const before = cards.get(review.guid) || F.createEmptyCard(new Date(review.time));
      const after = scheduler.next(before, new Date(review.time), review.grade).card;
      review.state = stateOf(after);
      cards.set(review.guid, after);
    }
    return cards;
  }

  function interval(fromMs, toMs) {
    const minutes = Math.max(0, Math.round((toMs - fromMs) / 60000));
    if (minutes < 1) return ["<1m", "less than a minute"];
    if (minutes < 60) return [`${minutes}m`, `${minutes} minute${minutes === 1 ? "" : "s"}`];
    const hours = Math.round(minutes / 60);
    if (hours < 24) return [`${hours}h`, `${hours} hour${hours === 1 ? "" : "s"}`];
    const days = Math.round(minutes / 1440);
    if (days < 31) return [`${days}d`, `${days} day${days === 1 ? "" : "s"}`];
    if (days < 365) {
      const months = (days / 30.4).toFixed(1);
      return [`${months}mo`, `${months} months`];
    }
    const years = (days / 365).toFixed(1);
    return [`${years}y`, `${years} years`];
  }

  const localDay = (ms) => {
    const d = new Date(ms);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
  };

  // ------------------------------------------------------------------------------------------ the page

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else if (name === "html") node.innerHTML = value;        // only cards.json's HTML, sanitised at build time
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const plain = (html) => {
    const box = document.createElement("div");
    box.innerHTML = html;
    return box.textContent.replace(/\s+/g, " ").trim();
  };

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function loadScript(url) {
    if (window.FSRS) return Promise.resolve(window.FSRS);
    return new Promise((resolve, reject) => {
      const script = el("script", { src: url });
      script.addEventListener("load", () => (window.FSRS ? resolve(window.FSRS) : reject(new Error(`${url} did not define FSRS`))));
      script.addEventListener("error", () => reject(new Error(`${url} could not be loaded`)));
      document.head.append(script);
    });
  }

  class Study {
    constructor(root, F, data, signal) {
      this.root = root;
      this.F = F;
      this.scheduler = F.fsrs(F.generatorParameters({ enable_fuzz: false }));
      this.cards = data.cards;
      this.byGuid = new Map(data.cards.map((c) => [c.guid, c]));
      this.retired = new Set(data.retired || []);
      this.page = new URLSearchParams(location.search).get("page");
      this.store = storage();
      this.undo = [];
      this.revealed = false;
      this.current = null;
      this.notices = [];
      this.readStored();
      this.build();
      document.addEventListener("keydown", (event) => this.key(event), { signal });
      this.refresh();
    }

    // The log as stored; a value it cannot read whole is kept aside, as it was, before anything is written.
    readStored() {
      this.problem = null;
      this.readOnly = false;
      if (!this.store) {
        this.log = emptyLog();
        this.notice("refused", "This browser refuses the site's storage (private browsing, or a setting), so your "
          + "reviews last only while this page is open. Export the log before you leave, and import it next time.");
        return;
      }
      const text = this.store.getItem(STORE);
      if (text === null) {
        this.log = emptyLog();
        return;
      }
      const { log, problem } = parseLog(text);
      this.log = log;
      if (problem) {
        this.problem = { ...problem, text };
        this.readOnly = true;     // until the reader chooses: nothing is written over the stored value
      }
    }

    save() {
      if (this.readOnly || !this.store) return;
      try {
        this.store.setItem(STORE, logText(this.log));
        this.clearNotice("full");
      } catch (error) {
        this.notice("full", `Your browser would not save the last review (${error.name}: storage full or refused). `
          + "It is kept while this page is open: export the log now, so that nothing is lost.");
      }
    }

    // ---------------------------------------------------------------------------------------- layout

    build() {
      const root = this.root;
      root.replaceChildren();
      root.classList.add("gdl-study");
      this.alerts = el("div", { class: "gdl-study__alerts", role: "alert" });
      this.scope = el("p", { class: "gdl-study__scope" });
      this.counts = el("p", { class: "gdl-study__counts", "aria-live": "polite" });
      const limit = el("input", { type: "number", min: "0", max: "9999", step: "1", id: "gdl-study-new-limit",
        value: String(this.log.settings.newPerDay), class: "gdl-study__limit" });
      limit.addEventListener("change", () => {
        const n = Number(limit.value);
        if (Number.isInteger(n) && n >= 0 && n <= 9999) {
          this.log.settings.newPerDay = n;
          this.save();
          this.refresh();
        } else {
          limit.value = String(this.log.settings.newPerDay);
        }
      });
      this.limitInput = limit;
      const settings = el("p", { class: "gdl-study__settings" },
        el("label", { for: "gdl-study-new-limit", text: "New cards a day: " }), limit);
      this.where = el("p", { class: "gdl-study__where" });
      this.question = el("div", { class: "gdl-study__question", "aria-live": "polite" });
      this.answer = el("div", { class: "gdl-study__answer", hidden: true });
      this.revealButton = el("button", { type: "button", class: "md-button md-button--primary gdl-study__reveal",
        "aria-keyshortcuts": "Space", onclick: () => this.reveal() }, "Show answer", el("kbd", { text: "space" }));
      this.gradeButtons = GRADES.map(([grade, name]) => el("button", {
        type: "button", class: `md-button gdl-study__grade gdl-study__grade--${name.toLowerCase()}`,
        "data-grade": String(grade), "aria-keyshortcuts": String(grade), onclick: () => this.grade(grade),
      }));
      this.grades = el("div", { class: "gdl-study__grades", hidden: true, role: "group", "aria-label": "Grade your answer" },
        ...this.gradeButtons);
      this.knownButton = el("button", { type: "button", class: "md-button gdl-study__known",
        onclick: () => this.markKnown(this.current) }, "Mark as known");
      this.card = el("section", { class: "gdl-study__card", "aria-label": "Card" },
        this.where, this.question, this.revealButton, this.answer, this.grades);
      this.done = el("div", { class: "gdl-study__done", hidden: true });
      this.undoButton = el("button", { type: "button", class: "md-button gdl-study__undo", "aria-keyshortcuts": "U",
        disabled: true, onclick: () => this.undoLast() }, "Undo", el("kbd", { text: "u" }));
      const importInput = el("input", { type: "file", accept: ".json,application/json", id: "gdl-study-import",
        class: "gdl-study__file" });
      importInput.addEventListener("change", () => {
        const file = importInput.files && importInput.files[0];
        if (file) file.text().then((text) => this.importText(text, file.name));
        importInput.value = "";
      });
      this.afresh = el("span", { class: "gdl-study__afresh" });
      const tools = el("div", { class: "gdl-study__tools" },
        this.undoButton, this.knownButton,
        el("button", { type: "button", class: "md-button gdl-study__export", onclick: () => this.exportJson() }, "Export log (JSON)"),
        el("button", { type: "button", class: "md-button gdl-study__export-csv", onclick: () => this.exportCsv() }, "Export history (CSV)"),
        el("label", { for: "gdl-study-import", class: "md-button gdl-study__import" }, "Import a log…"), importInput,
        this.afresh);
      this.status = el("p", { class: "gdl-study__status", role: "status" });
      this.knownList = el("details", { class: "gdl-study__known-list", hidden: true });
      root.append(this.alerts, this.scope, this.counts, settings, this.card, this.done, tools, this.knownList, this.status);
      this.renderAfresh(false);
    }

    notice(id, text, ...actions) {
      this.clearNotice(id);
      this.notices.push({ id, node: el("div", { class: "admonition warning gdl-study__notice", "data-notice": id },
        el("p", { text }), actions.length ? el("p", {}, ...actions) : null) });
      this.renderNotices();
    }

    clearNotice(id) {
      this.notices = this.notices.filter((n) => n.id !== id);
      this.renderNotices();
    }

    renderNotices() {
      if (this.alerts) this.alerts.replaceChildren(...this.notices.map((n) => n.node));
    }

    renderProblem() {
      const p = this.problem;
      if (!p) return this.clearNotice("problem");
      const keep = el("button", { type: "button", class: "md-button md-button--primary gdl-study__keep",
        onclick: () => this.resolve(true) }, `Keep the ${p.readable} readable review${p.readable === 1 ? "" : "s"}`);
      const fresh = el("button", { type: "button", class: "md-button gdl-study__fresh", onclick: () => this.resolve(false) },
        "Start afresh");
      const save = el("button", { type: "button", class: "md-button gdl-study__save-raw",
        onclick: () => download("gdl-ref-study-stored.txt", "text/plain", p.text) }, "Download the stored value");
      const what = {
        corrupt: `The review log saved in this browser is damaged: ${p.lost} part${p.lost === 1 ? "" : "s"} of it could not `
          + `be read, and ${p.readable} review${p.readable === 1 ? "" : "s"} could.`,
        foreign: "The value saved under this site's study key is not a review log of this site.",
        newer: `The review log saved in this browser was written by a newer version of this site (log version ${p.version}); `
          + "this page cannot read it without losing what the newer one wrote.",
      }[p.kind];
      this.notice("problem", `${what} Nothing is written over it until you choose: download it first, then keep what `
        + "could be read or start afresh (either way the stored value is also kept aside in this browser).",
        save, p.kind === "newer" ? null : keep, fresh);
    }

    resolve(keep) {
      try { this.store.setItem(ASIDE, this.problem.text); } catch (error) { /* the download offered above is the copy */ }
      if (!keep) this.log = emptyLog();
      this.problem = null;
      this.readOnly = false;
      this.undo = [];
      this.save();
      this.clearNotice("problem");
      this.refresh();
      this.say(keep ? `Kept ${this.log.reviews.length} reviews.` : "Started afresh.");
    }

    renderAfresh(asking) {
      const n = this.log.reviews.length;
      if (!asking) {
        this.afresh.replaceChildren(el("button", { type: "button", class: "md-button gdl-study__clear",
          onclick: () => this.renderAfresh(true) }, "Delete my reviews…"));
        return;
      }
      this.afresh.replaceChildren(
        el("span", { text: `Delete all ${n} reviews from this browser? Export them first to keep a copy. ` }),
        el("button", { type: "button", class: "md-button gdl-study__clear-yes", onclick: () => {
          this.log = emptyLog();
          this.undo = [];
          this.save();
          this.renderAfresh(false);
          this.refresh();
          this.say("Your reviews were deleted from this browser.");
        } }, "Delete"),
        el("button", { type: "button", class: "md-button gdl-study__clear-no", onclick: () => this.renderAfresh(false) }, "Keep them"));
    }

    say(text) {
      this.status.textContent = text;
    }

    // ---------------------------------------------------------------------------------------- the session

    now() {
      return Date.now();
    }

    inScope(card) {
      return !this.page || card.page === this.page;
    }

    /** The queue: due cards (earliest first), then new ones within today's limit, then learning cards due soon. */
    queue() {
      const now = this.now();
      this.schedule = replay(this.F, this.scheduler, this.log.reviews);
      const known = new Set(this.log.known);
      const today = localDay(now);
      const introducedToday = new Set();
      const firstSeen = new Map();
      for (const review of this.log.reviews) if (!firstSeen.has(review.guid)) firstSeen.set(review.guid, review.time);
      for (const [guid, time] of firstSeen) if (localDay(Date.parse(time)) === today) introducedToday.add(guid);
      const due = [];
      const soon = [];
      const fresh = [];
      for (const card of this.cards) {
        if (!this.inScope(card) || known.has(card.guid)) continue;
        const scheduled = this.schedule.get(card.guid);
        if (!scheduled) fresh.push(card);
        else if (scheduled.due.getTime() <= now) due.push(card);
        else if (scheduled.state !== this.F.State.Review && scheduled.due.getTime() <= now + LEARN_AHEAD_MS) soon.push(card);
      }
      const byDue = (a, b) => this.schedule.get(a.guid).due - this.schedule.get(b.guid).due;
      due.sort(byDue);
      soon.sort(byDue);
      const allowance = Math.max(0, this.log.settings.newPerDay - introducedToday.size);
      const gone = new Set([...this.schedule.keys()].filter((g) => !this.byGuid.has(g)));
      return { due, soon, fresh, newToday: fresh.slice(0, allowance), allowance, introduced: introducedToday.size, gone };
    }

    refresh() {
      const q = this.queue();
      this.q = q;
      this.renderProblem();
      this.renderScope();
      this.renderGone(q.gone);
      this.counts.replaceChildren(
        el("span", { class: "gdl-study__due", text: `Due: ${q.due.length}` }), " · ",
        el("span", { class: "gdl-study__new", text: `New: ${q.newToday.length}` }),
        ` (of ${q.fresh.length} not yet studied; ${q.introduced} started today, limit ${this.log.settings.newPerDay} a day)`,
        q.soon.length ? ` · learning, due within 20 minutes: ${q.soon.length}` : "");
      this.limitInput.value = String(this.log.settings.newPerDay);
      this.undoButton.disabled = this.undo.length === 0 || this.readOnly;
      this.renderKnown();
      const next = q.due[0] || q.newToday[0] || q.soon[0] || null;
      this.show(next);
    }

    /** The cards marked as known (in scope), each with "Study this card" to put it back in the schedule. */
    renderKnown() {
      const known = this.log.known.map((g) => this.byGuid.get(g)).filter((c) => c && this.inScope(c));
      const open = this.knownList.open;
      this.knownList.hidden = known.length === 0;
      this.knownList.replaceChildren(
        el("summary", { text: `Marked as known: ${known.length} card${known.length === 1 ? "" : "s"}` }),
        el("ul", {}, ...known.map((card) => el("li", {},
          el("a", { href: new URL(`${card.page}#${card.anchor}`, ROOT).href, html: card.title }), " ",
          el("button", { type: "button", class: "md-button gdl-study__unknown", "data-guid": card.guid,
            "aria-label": `Study this card: ${plain(card.title)}`, onclick: () => this.studyAgain(card) },
          "Study this card")))));
      this.knownList.open = open && known.length > 0;
    }

    renderScope() {
      if (!this.page) {
        this.scope.replaceChildren();
        return;
      }
      const first = this.cards.find((c) => c.page === this.page);
      const name = first ? first.chapter : this.page;
      this.scope.replaceChildren(`Reviewing the cards of “${name}” only. `,
        el("a", { href: location.pathname, text: "Study every card" }), ".");
    }

    renderGone(gone) {
      if (!gone.size) return this.clearNotice("gone");
      const retired = [...gone].filter((g) => this.retired.has(g)).length;
      const other = gone.size - retired;
      const parts = [];
      if (retired) parts.push(`${retired} card${retired === 1 ? " you studied was" : "s you studied were"} retired from the site`);
      if (other) parts.push(`${other} card${other === 1 ? " in your log is" : "s in your log are"} not on this version of the site`);
      this.notices = this.notices.filter((n) => n.id !== "gone");
      this.notices.push({ id: "gone", node: el("p", { class: "gdl-study__gone", "data-notice": "gone",
        text: `${parts.join(", and ")}: left out of the session; their reviews stay in your log and its exports.` }) });
      this.renderNotices();
    }

    show(card) {
      this.current = card;
      this.revealed = false;
      if (!card) {
        this.card.hidden = true;
        this.knownButton.disabled = true;
        const later = [...this.schedule.entries()].filter(([g]) => this.byGuid.has(g) && this.inScope(this.byGuid.get(g))
          && !this.log.known.includes(g)).map(([, c]) => c.due.getTime()).sort((a, b) => a - b)[0];
        const text = later ? `Nothing is due now. The next card is due in ${interval(this.now(), later)[1]}.`
          : "Nothing is due now.";
        this.done.replaceChildren(el("p", { text: this.q.fresh.length && !this.q.allowance
          ? `${text} Today's new cards are done; raise the limit above to start more.` : text }));
        this.done.hidden = false;
        return;
      }
      this.done.hidden = true;
      this.card.hidden = false;
      this.knownButton.disabled = false;
      this.card.dataset.guid = card.guid;
      const href = new URL(`${card.page}#${card.anchor}`, ROOT).href;
      this.where.replaceChildren(el("span", { text: `${card.chapter} · ` }),
        el("a", { href, html: card.title }));
      this.question.innerHTML = card.question;
      this.pointFigures(this.question);
      this.answer.innerHTML = card.answer;
      this.pointFigures(this.answer);
      this.addCopyButtons(this.answer);
      this.answer.hidden = true;
      this.grades.hidden = true;
      this.revealButton.hidden = false;
      if (!window.__gdlStudyFirstCard) {
        window.__gdlStudyFirstCard = performance.now();
        performance.mark("gdl-study-first-card");
      }
    }

    pointFigures(box) {
      for (const img of box.querySelectorAll("img[src]")) img.src = new URL(img.getAttribute("src"), ROOT).href;
    }

    /** A copy button on each code block of a card, as the theme gives the blocks of a page (its own
     * clipboard handler answers any [data-clipboard-text] button, so the button carries the code's text). */
    addCopyButtons(box) {
      for (const code of box.querySelectorAll(".highlight pre > code")) {
        code.parentElement.prepend(el("button", { class: "md-clipboard md-icon", type: "button",
          title: "Copy to clipboard", "data-clipboard-text": code.textContent }));
      }
    }

    reveal() {
      if (!this.current || this.revealed) return;
      this.revealed = true;
      const now = this.now();
      const before = this.schedule.get(this.current.guid) || this.F.createEmptyCard(new Date(now));
      const preview = this.scheduler.repeat(before, new Date(now));
      for (const button of this.gradeButtons) {
        const grade = Number(button.dataset.grade);
        const name = GRADES[grade - 1][1];
        const [short, long] = interval(now, preview[grade].card.due.getTime());
        button.replaceChildren(el("span", { class: "gdl-study__grade-name", text: name }),
          el("span", { class: "gdl-study__ivl", text: short }), el("kbd", { text: String(grade) }));
        button.setAttribute("aria-label", `${name}: next review in ${long} (key ${grade})`);
      }
      this.answer.hidden = false;
      this.grades.hidden = false;
      this.revealButton.hidden = true;
      this.gradeButtons[2].focus({ preventScroll: true });
    }

    grade(grade) {
      if (!this.current || !this.revealed || this.readOnlyRefusal()) return;
      const review = { guid: this.current.guid, time: new Date(this.now()).toISOString(), grade };
      const merged = mergeReviews(this.log.reviews, [review]);
      if (!merged.added) return;               // the same grade at the same millisecond: already recorded
      this.log.reviews = merged.reviews;
      this.undo.push(reviewKey(review));
      replay(this.F, this.scheduler, this.log.reviews);   // fills the new review's state before it is saved
      this.save();
      this.say(`${GRADES[grade - 1][1]}: recorded.`);
      this.refresh();
      this.revealButton.focus({ preventScroll: true });
    }

    readOnlyRefusal() {
      if (!this.readOnly) return false;
      this.say("Choose what to do with the damaged log first (the message at the top).");
      return true;
    }

    undoLast() {
      const key = this.undo.pop();
      if (!key || this.readOnlyRefusal()) return;
      const review = this.log.reviews.find((r) => reviewKey(r) === key);
      this.log.reviews = this.log.reviews.filter((r) => reviewKey(r) !== key);
      this.save();
      this.refresh();
      if (review && this.byGuid.has(review.guid)) this.show(this.byGuid.get(review.guid));
      this.say("The last grade was undone.");
    }

    markKnown(card) {
      if (!card || this.readOnlyRefusal()) return;
      if (!this.log.known.includes(card.guid)) this.log.known.push(card.guid);
      this.save();
      this.say(`“${plain(card.title)}” is marked as known and left out of the schedule.`);
      this.refresh();
    }

    studyAgain(card) {
      if (!card || this.readOnlyRefusal()) return;
      this.log.known = this.log.known.filter((g) => g !== card.guid);
      this.save();
      this.say(`“${plain(card.title)}” is back in the schedule.`);
      this.refresh();
    }

    key(event) {
      if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
      const target = event.target;
      if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
      if (event.key === " " && this.current && !this.revealed) {
        event.preventDefault();
        this.reveal();
      } else if (["1", "2", "3", "4"].includes(event.key) && this.revealed) {
        event.preventDefault();
        this.grade(Number(event.key));
      } else if (event.key === "u" || event.key === "U") {
        event.preventDefault();
        this.undoLast();
      }
    }

    // ---------------------------------------------------------------------------------------- export, import

    exportJson() {
      replay(this.F, this.scheduler, this.log.reviews);
      download(`gdl-ref-study-${new Date(this.now()).toISOString().slice(0, 10)}.json`, "application/json", logText(this.log));
      this.say(`Exported ${this.log.reviews.length} reviews.`);
    }

    exportCsv() {
      replay(this.F, this.scheduler, this.log.reviews);
      const cell = (v) => {
        let s = v === null || v === undefined ? "" : String(v);
        if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;             // a spreadsheet would run it as a formula
        return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
      };
      const rows = [["guid", "card", "title", "time", "grade", "due", "stability", "difficulty", "state", "reps", "lapses"]];
      for (const r of this.log.reviews) {
        const card = this.byGuid.get(r.guid);
        rows.push([r.guid, card ? card.key : "", card ? plain(card.title) : "", r.time, GRADES[r.grade - 1][1],
          r.state.due, r.state.stability, r.state.difficulty, r.state.state, r.state.reps, r.state.lapses]);
      }
      download(`gdl-ref-study-${new Date(this.now()).toISOString().slice(0, 10)}.csv`, "text/csv",
        rows.map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n");
      this.say(`Exported ${this.log.reviews.length} reviews as CSV.`);
    }

    importText(text, name) {
      if (this.readOnlyRefusal()) return;
      const { log, problem } = parseLog(text);
      if (problem && problem.kind !== "corrupt") {
        this.say(problem.kind === "newer"
          ? `${name} was written by a newer version of this site: nothing was imported.`
          : `${name} is not a review log of this site: nothing was imported.`);
        return;
      }
      const merged = mergeReviews(this.log.reviews, log.reviews);
      this.log.reviews = merged.reviews;
      this.log.known = [...new Set([...this.log.known, ...log.known])];
      this.save();
      this.refresh();
      const skipped = log.reviews.length - merged.added;
      this.say(`Imported ${merged.added} review${merged.added === 1 ? "" : "s"} from ${name}`
        + (skipped ? ` (${skipped} already here)` : "")
        + (problem ? `; ${problem.lost} damaged part${problem.lost === 1 ? " was" : "s were"} skipped.` : "."));
    }

    /** What a test or a curious reader can read: each card's schedule and the log. */
    snapshot() {
      const schedule = {};
      for (const [guid, card] of replay(this.F, this.scheduler, this.log.reviews)) schedule[guid] = stateOf(card);
      return { schedule, reviews: this.log.reviews.map((r) => ({ ...r })), known: this.log.known.slice(),
        settings: { ...this.log.settings }, readOnly: this.readOnly };
    }
  }

  // ------------------------------------------------------------------------------------------ mounting

  let controller = null;

  function mountStudy(root, signal) {
    root.setAttribute("aria-busy", "true");
    const data = fetch(new URL("downloads/study/cards.json", ROOT)).then((response) => {
      if (!response.ok) throw new Error(`downloads/study/cards.json: HTTP ${response.status}`);
      return response.json();
    });
    Promise.all([loadScript(new URL("downloads/study/ts-fsrs.umd.js", ROOT).href), data]).then(([F, cards]) => {
      if (signal.aborted) return;
      if (!cards || cards.version !== DATA_VERSION || !Array.isArray(cards.cards)) {
        throw new Error(`downloads/study/cards.json is not version ${DATA_VERSION} of the cards' data`);
      }
      window.gdlStudy = new Study(root, F, cards, signal);
      root.removeAttribute("aria-busy");
    }).catch((error) => {
      root.removeAttribute("aria-busy");
      root.replaceChildren(el("p", { class: "gdl-study__error", role: "alert",
        text: `The Study page could not start: ${error.message}.` }));
    });
  }

  /** On a page with cards: a link to the Study page limited to this page's cards. */
  function addPageLink(signal) {
    const article = document.querySelector("article.md-content__inner");
    if (!article || !article.querySelector("details.question") || article.querySelector(".gdl-study-page-link")) return;
    const page = location.pathname.slice(ROOT.pathname.length);
    if (!page || page.startsWith("study/")) return;
    const href = new URL(`study/?page=${encodeURIComponent(page)}`, ROOT).href;
    const link = el("p", { class: "gdl-study-page-link" },
      el("a", { class: "md-button", href }, "Review this page's cards"));
    const footer = article.querySelector("aside.md-source-file");
    if (footer) footer.before(link); else article.append(link);
    if (signal.aborted) link.remove();
  }

  /** The heading that names a card: its id is the card's anchor. */
  function cardAnchor(details) {
    for (let e = details.previousElementSibling; e; e = e.previousElementSibling) {
      if (/^H[1-6]$/.test(e.tagName)) return e.id || "";
    }
    return "";
  }

  /**
   * On a page with cards: after each card, a button that takes it out of the schedule ("Mark as known")
   * or puts it back ("Study this card"). Each click reads the stored log afresh (another tab may have
   * written it) and writes it back whole; a log the page cannot read whole is never written over.
   */
  function addCardButtons(signal) {
    const article = document.querySelector("article.md-content__inner");
    const page = location.pathname.slice(ROOT.pathname.length);
    if (!article || !article.querySelector("details.question") || !page || page.startsWith("study/")) return;
    fetch(new URL("downloads/study/index.json", ROOT)).then((r) => (r.ok ? r.json() : null)).then((index) => {
      if (signal.aborted || !index || index.version !== DATA_VERSION || !index.cards) return;
      const store = storage();
      const status = el("p", { class: "gdl-study-card-status gdl-visually-hidden", role: "status" });
      article.append(status);
      const read = () => {
        const text = store ? store.getItem(STORE) : null;
        return text === null ? { log: emptyLog(), problem: null } : parseLog(text);
      };
      const buttons = [];
      const label = (button) => {
        const { log, problem } = read();
        const known = log.known.includes(button.dataset.guid);
        button.textContent = known ? "Study this card" : "Mark as known";
        button.setAttribute("aria-pressed", known ? "true" : "false");
        button.disabled = !store || Boolean(problem);
        button.title = !store ? "This browser refuses the site's storage."
          : problem ? "Your review log needs attention: open the Study page." : "";
      };
      for (const details of article.querySelectorAll("details.question")) {
        const anchor = cardAnchor(details);
        const guid = index.cards[`${page}#${anchor}`];
        if (!guid || details.nextElementSibling?.classList.contains("gdl-study-card")) continue;
        const title = details.querySelector(":scope > summary");
        const button = el("button", { type: "button", class: "md-button gdl-study-card__known", "data-guid": guid,
          "aria-describedby": anchor || null });
        button.addEventListener("click", () => {
          const { log, problem } = read();
          if (!store || problem) return label(button);
          const known = log.known.includes(guid);
          log.known = known ? log.known.filter((g) => g !== guid) : [...log.known, guid];
          try {
            store.setItem(STORE, logText(log));
            status.textContent = `${title ? title.textContent.trim() : "This card"}: `
              + (known ? "back in the schedule." : "marked as known, left out of the schedule.");
          } catch (error) {
            status.textContent = `Your browser would not save it (${error.name}).`;
          }
          buttons.forEach(label);
        });
        buttons.push(button);
        details.after(el("p", { class: "gdl-study-card" }, button));
      }
      buttons.forEach(label);
      window.addEventListener("storage", (event) => { if (event.key === STORE) buttons.forEach(label); }, { signal });
      if (signal.aborted) for (const b of buttons) b.parentElement.remove();
    }).catch(() => {});      // without the index the page is still the page: the cards stay readable
  }

  function mount() {
    if (controller) controller.abort();
    controller = new AbortController();
    const root = document.getElementById("gdl-study");
    if (root) mountStudy(root, controller.signal);
    else {
      addCardButtons(controller.signal);
      addPageLink(controller.signal);
    }
  }

  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(mount);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();

  // For the tests: the parts that need no page.
  window.gdlStudyLog = { parseLog, logText, mergeReviews };
})();
