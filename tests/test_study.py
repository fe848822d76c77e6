"""The Study page: its data (gdl_site.study) and, in Chromium on both builds, a reader's sessions.

The schedule must be FSRS as its reference implementations compute it: a session on a fixed clock over
simulated days is replayed through ``fsrs`` from PyPI (fuzzing off in both), and every review's due date,
stability and difficulty must match what the page's ts-fsrs computed. Two differences are by design and are
tested as such, and the session keeps clear of both:

* ``test_elapsed_days_differ_by_design``: ts-fsrs counts the days since the last review by UTC calendar
  date, ``fsrs`` by whole 24-hour periods (the session's sittings start later in the day each day);
* ``test_hard_in_a_learning_step_differs_by_design``: on a learning step, ts-fsrs waits the mean of the first
  two steps, rounded to the minute, ``fsrs`` that mean unrounded on the first step and the current step on
  a later one (the session grades Hard only cards in review).

And one the session meets and the comparison applies (`_review_intervals`): for a card in review, ts-fsrs
keeps the three passing intervals in order, Hard <= Good < Easy, a day apart at least (Good = max(Good,
Hard + 1), Easy = max(Easy, Good + 1)); ``fsrs`` takes each from its own stability, so at a low stability
Hard and Good can both come out as one day.

Screenshots (desktop and 390 px, light and dark) and the measured page weight and time to the first card
go to artifacts/screenshots/ (artifacts/screenshots/zensical/ for Zensical's build).
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SiteBuild
from site_server import SiteServer
from test_browser import SCREENSHOTS, Session, browser, server, site_dir  # noqa: F401  (fixtures, reused)

from gdl_site.cards.lock import LOCK_NAME, read_lock
from gdl_site.errors import SiteError
from gdl_site.files import GeneratedFolder
from gdl_site.study import fsrs_bundle, page_url, study_cards, write_study_assets

STUDY = "study/"
STORE = "gdl-ref.study"
ASIDE = "gdl-ref.study.set-aside"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
START = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)
# (day, hour UTC) of each sitting: each starts later in the day than the one before ended, so that the
# days elapsed since a review are the same counted by calendar date (ts-fsrs) or by 24 h (fsrs).
SITTINGS = ((0, 6), (1, 7), (2, 8), (4, 9), (7, 10), (11, 11), (16, 12), (25, 13), (40, 14))
GRADE_CYCLE = (3, 3, 1, 3, 4, 2, 3, 1, 3, 3, 4, 3)
READY_JS = "() => window.gdlStudy && !document.getElementById('gdl-study').hasAttribute('aria-busy')"


# ----------------------------------------------------------------------------------------------- the data


def test_cards_data_keys_every_card_by_its_lock_guid() -> None:
    data = study_cards(ROOT)
    lock = read_lock(ROOT / LOCK_NAME)
    assert data["version"] == 1 and len(data["cards"]) >= 1
    for card in data["cards"]:
        card_id = card["key"].split("/", 1)[1]
        assert card["guid"] == lock[card_id].guid, card["key"]
        assert (ROOT / "docs" / card["page"] / "index.md").is_file() or \
            (ROOT / "docs" / (card["page"].rstrip("/") + ".md")).is_file(), card["page"]
        for field in ("title", "question", "answer"):
            assert "\\(" not in card[field] and "\\[" not in card[field] and "<script" not in card[field], card["key"]
    assert any("<math" in card["answer"] for card in data["cards"]), "no answer shows its math as MathML"
    assert len({card["guid"] for card in data["cards"]}) == len(data["cards"])


def test_page_url_is_the_builders_directory_url() -> None:
    from pathlib import PurePosixPath

    assert page_url(PurePosixPath("families/flows.md")) == "families/flows/"
    assert page_url(PurePosixPath("index.md")) == ""
    assert page_url(PurePosixPath("guide/index.md")) == "guide/"


def _copy_for_build(root: Path, target: Path) -> Path:
    """What the card export reads (pages, embedded sources, the lock), copied to ``target``."""
    for name in ("docs", "src", "benchmarks"):
        shutil.copytree(root / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "notebooks", "downloads"))
    for name in ("mkdocs.yml", LOCK_NAME, "package.json", "package-lock.json"):
        shutil.copy(root / name, target / name)
    return target


def test_the_build_stops_with_a_clear_message_without_ts_fsrs(tmp_path: Path) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    with pytest.raises(SiteError, match=r"node_modules/ts-fsrs/dist/index.umd.js is missing.*run `npm ci`"):
        fsrs_bundle(tmp_path)
    package = tmp_path / "node_modules" / "ts-fsrs"
    (package / "dist").mkdir(parents=True)
    (package / "dist" / "index.umd.js").write_text("// a bundle\n")
    (package / "package.json").write_text('{"version": "0.0.1"}')
    with pytest.raises(SiteError, match=r"is version 0\.0\.1, package-lock\.json pins .*run `npm ci`"):
        fsrs_bundle(tmp_path)


def test_assets_are_written_into_the_generated_folder(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / "ts-fsrs").is_dir():
        pytest.fail("node_modules/ts-fsrs is missing: run `npm ci` in the repository root")
    with GeneratedFolder(tmp_path / "downloads") as folder:
        lines = write_study_assets(ROOT, folder)
    assert "cards.json" in lines[0]
    bundle = (tmp_path / "downloads" / "study" / "ts-fsrs.umd.js").read_text(encoding="utf-8")
    assert "global.FSRS" in bundle
    data = json.loads((tmp_path / "downloads" / "study" / "cards.json").read_text(encoding="utf-8"))
    assert data["scheduler"]["package"] == "ts-fsrs" and data["cards"]
    manifest = (tmp_path / "downloads" / ".generated").read_text(encoding="utf-8").split()
    assert manifest == ["study/cards.json", "study/index.json", "study/ts-fsrs.umd.js"]
    index = json.loads((tmp_path / "downloads" / "study" / "index.json").read_text(encoding="utf-8"))
    assert index["cards"] == {f"{c['page']}#{c['anchor']}": c["guid"] for c in data["cards"]}
    assert len(set(index["cards"].values())) == len(data["cards"])     # one GUID a card, one card a GUID


def test_a_card_moved_to_another_page_keeps_its_guid(tmp_path: Path) -> None:
    """The Study page keys the schedule by GUID, so a card that moves keeps its reviews."""
    from gdl_site.cards.parse import parse_page

    copy = _copy_for_build(ROOT, tmp_path / "repo")
    source = copy / "docs" / "families" / "flows.md"
    target = copy / "docs" / "families" / "vae.md"
    page = parse_page(source, copy)
    moving, after = page.cards[0], page.cards[1]
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    block = lines[moving.line - 1: after.line - 1]
    source.write_text("".join(lines[: moving.line - 1] + lines[after.line - 1:]), encoding="utf-8")
    target.write_text(target.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "".join(block), encoding="utf-8")
    before = {c["key"].split("/")[1]: c for c in study_cards(ROOT)["cards"]}
    moved = {c["key"].split("/")[1]: c for c in study_cards(copy)["cards"]}
    assert before[moving.id]["page"] == "families/flows/" and moved[moving.id]["page"] == "families/vae/"
    assert moved[moving.id]["guid"] == before[moving.id]["guid"]


# --------------------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def study_site(site_dir: Path, any_site: SiteBuild) -> Path:
    """The build, which must have the Study page and its data (the build step writes downloads/study/)."""
    for path in ("study/index.html", "assets/study/study.js", "downloads/study/cards.json", "downloads/study/ts-fsrs.umd.js"):
        assert (site_dir / path).is_file(), f"{any_site.builder}: the build has no {path}"
    return site_dir


@pytest.fixture(scope="module")
def cards(study_site: Path) -> list[dict[str, Any]]:
    return json.loads((study_site / "downloads" / "study" / "cards.json").read_text(encoding="utf-8"))["cards"]


@pytest.fixture()
def reader(browser: Any, server: SiteServer, study_site: Path) -> Iterator[Session]:  # noqa: F811
    """A reader on a desktop, in UTC, whose clock the test sets; every request it makes is recorded."""
    session = Session(browser, server, viewport=DESKTOP, color_scheme="light", timezone_id="UTC", accept_downloads=True)
    session.context.clock.set_fixed_time(START)
    yield session
    session.close()


def _open(session: Session, page: str = STUDY) -> Any:
    tab = session.open(page)
    tab.wait_for_function(READY_JS)
    return tab


def _reload(tab: Any) -> None:
    tab.reload(wait_until="load")
    tab.wait_for_function(READY_JS)


def _snapshot(tab: Any) -> dict[str, Any]:
    return tab.evaluate("() => window.gdlStudy.snapshot()")


def _current(tab: Any) -> str | None:
    return tab.evaluate("() => { const c = document.querySelector('.gdl-study__card'); return c.hidden ? null : c.dataset.guid; }")


def _grade(tab: Any, grade: int) -> str:
    guid = _current(tab)
    assert guid, "no card is shown"
    tab.keyboard.press("Space")
    assert tab.locator(".gdl-study__answer").is_visible()
    assert tab.locator(".gdl-study__grades button").count() == 4
    tab.keyboard.press(str(grade))
    return guid


def _set_clock(session: Session, when: datetime) -> None:
    session.context.clock.set_fixed_time(when)


def _no_leaks(session: Session) -> None:
    report = session.report
    assert report.external_requests == [], f"requests off 127.0.0.1: {report.external_requests}"
    assert report.failed_requests == [], report.failed_requests
    assert report.console_errors == [], report.console_errors


def _review_intervals(scheduler: Any, card: Any, when: datetime) -> dict[int, int]:
    """The days fsrs gives a card in review for Hard, Good and Easy, put in ts-fsrs's order (see the top)."""
    from fsrs import Rating

    days = {g: (scheduler.review_card(copy.deepcopy(card), Rating(g), when)[0].due - when).days for g in (2, 3, 4)}
    days[2] = min(days[2], days[3])
    days[3] = max(days[3], days[2] + 1)
    days[4] = max(days[4], days[3] + 1)
    return days


def _python_states(reviews: list[dict[str, Any]], ordered: bool = False) -> list[dict[str, Any]]:
    """Each review's card state after it, as the reference Python implementation (fsrs on PyPI) computes it;
    with ``ordered``, a card in review gets ts-fsrs's ordered intervals."""
    from fsrs import Card, Rating, Scheduler, State

    scheduler = Scheduler(enable_fuzzing=False)
    cards: dict[str, Any] = {}
    states = []
    for number, review in enumerate(reviews):
        card = cards.get(review["guid"]) or Card(card_id=number + 1)
        when = datetime.fromisoformat(review["time"])
        days = _review_intervals(scheduler, card, when) if ordered and card.state == State.Review else {}
        card, _ = scheduler.review_card(card, Rating(review["grade"]), when)
        if review["grade"] in days:
            card.due = when + timedelta(days=days[review["grade"]])
        cards[review["guid"]] = card
        states.append({"due": card.due, "stability": card.stability, "difficulty": card.difficulty,
                       "state": card.state.name})
    return states


def _assert_same_schedule(reviews: list[dict[str, Any]]) -> None:
    for review, expected in zip(reviews, _python_states(reviews, ordered=True), strict=True):
        state = review["state"]
        history = [(r["time"], r["grade"], r["state"]["due"]) for r in reviews if r["guid"] == review["guid"]]
        where = f"{review['guid']} graded {review['grade']} at {review['time']}; its reviews (time, grade, due): {history}"
        assert datetime.fromisoformat(state["due"]) == expected["due"], where
        assert state["stability"] == pytest.approx(expected["stability"], rel=1e-6, abs=1e-7), where
        assert state["difficulty"] == pytest.approx(expected["difficulty"], rel=1e-6, abs=1e-7), where
        assert state["state"] == expected["state"], where


def test_a_session_over_simulated_days_matches_python_fsrs(reader: Session) -> None:
    """Three new cards a day, grades from a fixed cycle, a reload at each sitting; then fsrs replays the log."""
    tab = _open(reader)
    limit = tab.locator("#gdl-study-new-limit")
    limit.fill("3")
    limit.dispatch_event("change")
    graded = 0
    for day, hour in SITTINGS:
        now = START.replace(hour=hour) + timedelta(days=day)
        _set_clock(reader, now)
        _reload(tab)
        for _ in range(80):
            if _current(tab) is None:
                break
            grade = GRADE_CYCLE[graded % len(GRADE_CYCLE)]
            in_review = tab.evaluate("(g) => (window.gdlStudy.snapshot().schedule[g] || {}).state === 'Review'", _current(tab))
            _grade(tab, grade if grade != 2 or in_review else 3)
            graded += 1
            now += timedelta(seconds=20)
            _set_clock(reader, now)
        assert _current(tab) is None, f"day {day}: still cards after 80 reviews"
    snapshot = _snapshot(tab)
    assert graded == len(snapshot["reviews"]) and graded > 30
    assert len({r["guid"] for r in snapshot["reviews"]}) == 3 * len(SITTINGS)
    assert {r["state"]["state"] for r in snapshot["reviews"]} >= {"Learning", "Review", "Relearning"}
    assert max(r["state"]["stability"] for r in snapshot["reviews"]) > 10   # intervals of weeks were reached
    _assert_same_schedule(snapshot["reviews"])
    _no_leaks(reader)


def test_elapsed_days_differ_by_design(reader: Session, cards: list[dict[str, Any]]) -> None:
    """ts-fsrs counts days since the last review by UTC date, fsrs by 24-hour periods: a review 23 hours on,
    across midnight, is a day later to ts-fsrs (as a review 24 hours on is to fsrs) and the same day to fsrs."""
    guid = cards[0]["guid"]
    first = datetime(2026, 3, 1, 20, 0, tzinfo=timezone.utc)
    log = [(first, 3), (first + timedelta(minutes=10), 3), (first + timedelta(days=2, minutes=10), 3)]
    later = first + timedelta(days=3, hours=-1)          # 23 hours after the last review, on the next UTC date
    reviews = [{"guid": guid, "time": t.isoformat().replace("+00:00", "Z"), "grade": g} for t, g in log + [(later, 3)]]
    tab = _open(reader)
    tab.evaluate("([key, text]) => localStorage.setItem(key, text)",
                 [STORE, tab.evaluate("(r) => window.gdlStudyLog.logText({settings: {newPerDay: 20}, known: [], reviews: r})", reviews)])
    _reload(tab)
    browser_state = _snapshot(tab)["reviews"][-1]["state"]
    same_day = _python_states(reviews)[-1]
    full_day = _python_states(reviews[:-1] + [{**reviews[-1], "time": (later + timedelta(hours=1, minutes=10)).isoformat()}])[-1]
    assert browser_state["stability"] != pytest.approx(same_day["stability"], rel=1e-3)
    assert browser_state["stability"] == pytest.approx(full_day["stability"], rel=1e-6)
    assert browser_state["difficulty"] == pytest.approx(full_day["difficulty"], rel=1e-6)


def test_hard_in_a_learning_step_differs_by_design(reader: Session, cards: list[dict[str, Any]]) -> None:
    """Hard on the first learning step (of 1 and 10 minutes): ts-fsrs 6 minutes, fsrs 5.5; on the second
    step: ts-fsrs 6 minutes again, fsrs the step itself, 10 minutes. Stability and difficulty agree."""
    first = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    stamp = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    reviews = [{"guid": cards[0]["guid"], "time": stamp(first), "grade": 2},
               {"guid": cards[1]["guid"], "time": stamp(first), "grade": 3},
               {"guid": cards[1]["guid"], "time": stamp(first + timedelta(minutes=10)), "grade": 2}]
    tab = _open(reader)
    tab.evaluate("([key, text]) => localStorage.setItem(key, text)",
                 [STORE, tab.evaluate("(r) => window.gdlStudyLog.logText({settings: {newPerDay: 20}, known: [], reviews: r})", reviews)])
    _reload(tab)
    ours = [r["state"] for r in _snapshot(tab)["reviews"]]
    python = _python_states(reviews)
    waits = [(datetime.fromisoformat(s["due"]) - datetime.fromisoformat(r["time"])) for s, r in zip(ours, reviews)]
    python_waits = [(p["due"] - datetime.fromisoformat(r["time"])) for p, r in zip(python, reviews)]
    assert [waits[0], waits[2]] == [timedelta(minutes=6), timedelta(minutes=6)]
    assert [python_waits[0], python_waits[2]] == [timedelta(minutes=5.5), timedelta(minutes=10)]
    for state, expected in zip(ours, python):
        assert state["stability"] == pytest.approx(expected["stability"], rel=1e-6)
        assert state["difficulty"] == pytest.approx(expected["difficulty"], rel=1e-6)


def test_reload_mid_session_loses_nothing(reader: Session) -> None:
    tab = _open(reader)
    done = [_grade(tab, 3), _grade(tab, 1)]
    shown = _current(tab)
    tab.keyboard.press("Space")                                  # the answer is open when the page reloads
    _reload(tab)
    snapshot = _snapshot(tab)
    assert [r["guid"] for r in snapshot["reviews"]] == done
    assert _current(tab) == shown                                # the session goes on where it was
    assert tab.locator(".gdl-study__new").inner_text() == "New: 18"
    _grade(tab, 3)
    assert len(_snapshot(tab)["reviews"]) == 3
    tab.keyboard.press("u")                                       # undo the last grade
    assert len(_snapshot(tab)["reviews"]) == 2 and _current(tab) == shown
    _no_leaks(reader)


def _download(tab: Any, button: str, folder: Path) -> Path:
    with tab.expect_download() as event:
        tab.locator(button).click()
    download = event.value
    path = folder / download.suggested_filename
    download.save_as(path)
    return path


def test_export_clear_import_gives_the_same_schedule(reader: Session, tmp_path: Path) -> None:
    tab = _open(reader)
    for k, grade in enumerate((3, 4, 1, 3, 2)):
        _set_clock(reader, START + timedelta(minutes=k))
        _grade(tab, grade)
    before = _snapshot(tab)
    exported = _download(tab, ".gdl-study__export", tmp_path)
    log = json.loads(exported.read_text(encoding="utf-8"))
    assert log["format"] == "gdl-ref-study-log" and len(log["reviews"]) == 5
    assert all({"guid", "time", "grade", "state"} <= set(r) for r in log["reviews"])
    table = _download(tab, ".gdl-study__export-csv", tmp_path).read_text(encoding="utf-8").splitlines()
    assert table[0].startswith("guid,card,title,time,grade,due,stability,difficulty") and len(table) == 6
    tab.evaluate("() => localStorage.clear()")
    _reload(tab)
    assert _snapshot(tab)["reviews"] == []
    tab.locator("#gdl-study-import").set_input_files(str(exported))
    tab.wait_for_function("() => window.gdlStudy.snapshot().reviews.length === 5")
    assert _snapshot(tab)["schedule"] == before["schedule"]
    tab.locator("#gdl-study-import").set_input_files(str(exported))      # the same log again
    tab.wait_for_function("() => /already here/.test(document.querySelector('.gdl-study__status').textContent)")
    assert "Imported 0 reviews" in tab.locator(".gdl-study__status").inner_text()
    after = _snapshot(tab)
    assert len(after["reviews"]) == 5 and after["schedule"] == before["schedule"]
    _reload(tab)
    assert _snapshot(tab)["schedule"] == before["schedule"]
    _no_leaks(reader)


def test_corrupt_storage_is_reported_and_readable_reviews_survive(reader: Session, cards: list[dict[str, Any]]) -> None:
    tab = _open(reader)
    reviews = [{"guid": cards[k]["guid"], "time": f"2026-01-0{k + 1}T06:00:00.000Z", "grade": 3} for k in range(3)]
    text = tab.evaluate("(r) => window.gdlStudyLog.logText({settings: {newPerDay: 7}, known: [], reviews: r})", reviews)
    lines = text.split("\n")
    lines[2] = lines[2][:25] + "\u0000garbage"                     # the second review damaged, the JSON broken
    damaged = "\n".join(lines)
    tab.evaluate("([key, text]) => localStorage.setItem(key, text)", [STORE, damaged])
    _reload(tab)
    notice = tab.locator("[data-notice=problem]")
    assert notice.is_visible()
    assert "1 part of it could not be read, and 2 reviews could" in notice.inner_text()
    assert tab.evaluate(f"() => localStorage.getItem('{STORE}')") == damaged      # nothing written over it yet
    assert [r["guid"] for r in _snapshot(tab)["reviews"]] == [reviews[0]["guid"], reviews[2]["guid"]]
    tab.locator(".gdl-study__keep").click()
    assert not notice.is_visible()
    assert tab.evaluate(f"() => localStorage.getItem('{ASIDE}')") == damaged
    stored = json.loads(tab.evaluate(f"() => localStorage.getItem('{STORE}')"))
    assert [r["guid"] for r in stored["reviews"]] == [reviews[0]["guid"], reviews[2]["guid"]]
    assert stored["settings"]["newPerDay"] == 7
    for value, says in (('"a string"', "not a review log of this site"),
                        ('{"format": "gdl-ref-study-log", "version": 99, "reviews": []}', "newer version of this site")):
        tab.evaluate("([key, text]) => localStorage.setItem(key, text)", [STORE, value])
        _reload(tab)
        assert says in tab.locator("[data-notice=problem]").inner_text()
    _no_leaks(reader)


CHAPTER = "chapters/generative-modelling/"


def test_mark_as_known_on_a_chapter_page_reaches_the_study_page(reader: Session, cards: list[dict[str, Any]]) -> None:
    """Each card of a chapter page has "Mark as known"; the Study page leaves it out, and "Study this card"
    (there or on the chapter page) puts it back."""
    on_page = [c for c in cards if c["page"] == CHAPTER]
    tab = reader.open(CHAPTER)
    buttons = tab.locator(".gdl-study-card__known")
    buttons.first.wait_for(state="attached")
    assert buttons.count() == len(on_page), "one button a card of the page"
    first = buttons.first
    guid = first.get_attribute("data-guid")
    expected = on_page[0]
    assert guid == expected["guid"], "the first button is the first card's, by its page#anchor"
    heading_id = first.evaluate("b => { for (let e = b.parentElement.previousElementSibling; e; e = e.previousElementSibling)"
                                " if (/^H[1-6]$/.test(e.tagName)) return e.id; return null; }")
    assert heading_id == expected["anchor"], "the button sits under its own card's heading"
    assert first.inner_text() == "Mark as known" and first.get_attribute("aria-pressed") == "false"
    first.focus()
    tab.keyboard.press("Enter")                                     # usable with the keyboard alone
    assert first.inner_text() == "Study this card" and first.get_attribute("aria-pressed") == "true"
    assert "marked as known" in tab.locator(".gdl-study-card-status").inner_text()

    study = _open(reader, f"{STUDY}?page={CHAPTER}")
    assert _snapshot(study)["known"] == [guid]
    assert _current(study) != guid, "a card marked as known is not shown"
    listed = study.locator(".gdl-study__known-list")
    assert listed.is_visible() and "Marked as known: 1 card" in listed.inner_text()
    study.locator(".gdl-study__known-list summary").click()
    study.locator(f'.gdl-study__unknown[data-guid="{guid}"]').click()
    assert _snapshot(study)["known"] == [] and listed.is_hidden()

    tab.reload(wait_until="load")
    tab.locator(".gdl-study-card__known").first.wait_for(state="attached")
    again = tab.locator(f'.gdl-study-card__known[data-guid="{guid}"]')
    assert again.inner_text() == "Mark as known", "the chapter page reads the log the Study page wrote"
    _no_leaks(reader)


def test_card_buttons_never_write_over_a_damaged_log(reader: Session) -> None:
    tab = reader.open(CHAPTER)
    tab.evaluate("([key]) => localStorage.setItem(key, '{not json')", [STORE])
    tab.reload(wait_until="load")
    button = tab.locator(".gdl-study-card__known").first
    button.wait_for(state="attached")
    assert button.is_disabled() and "Study page" in (button.get_attribute("title") or "")
    assert tab.evaluate("([key]) => localStorage.getItem(key)", [STORE]) == "{not json"
    _no_leaks(reader)


def test_a_retired_card_is_left_out_with_a_line(reader: Session, cards: list[dict[str, Any]]) -> None:
    """The build's cards.json, served as if the first card had been retired since the reviews were made."""
    retired = cards[0]["guid"]

    def without_first(route: Any) -> None:
        data = json.loads(route.fetch().text())
        data["cards"] = [c for c in data["cards"] if c["guid"] != retired]
        data["retired"] = [retired]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))

    tab = _open(reader)
    _set_clock(reader, START)
    review = {"guid": retired, "time": "2026-01-01T06:00:00.000Z", "grade": 1}
    tab.evaluate("([key, text]) => localStorage.setItem(key, text)",
                 [STORE, tab.evaluate("(r) => window.gdlStudyLog.logText({settings: {newPerDay: 20}, known: [], reviews: r})", [review])])
    tab.route("**/downloads/study/cards.json", without_first)
    _reload(tab)
    line = tab.locator("[data-notice=gone]")
    assert "1 card you studied was retired from the site" in line.inner_text()
    assert _current(tab) != retired and _current(tab) is not None
    assert len(_snapshot(tab)["reviews"]) == 1                       # its review stays in the log


def test_screenshots_and_measures(browser: Any, server: SiteServer, any_site: SiteBuild, study_site: Path,  # noqa: F811
                                  cards: list[dict[str, Any]]) -> None:
    """Desktop and 390 px, light and dark, with a card's answer open; and with 80 cards due, the time to the
    first card and the page's weight, written to study-measures.json beside the screenshots."""
    shots = SCREENSHOTS if any_site.builder == "mkdocs" else SCREENSHOTS / any_site.builder
    shots.mkdir(parents=True, exist_ok=True)
    weight = 0
    for scheme in ("light", "dark"):
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            session = Session(browser, server, viewport=viewport, color_scheme=scheme, timezone_id="UTC")
            try:
                tab = _open(session)
                if not weight:   # the bytes of everything the Study page loaded, as served (no compression)
                    weight = tab.evaluate("() => performance.getEntriesByType('navigation').concat("
                                          "performance.getEntriesByType('resource')).reduce((n, e) => n + e.encodedBodySize, 0)")
                expected = "slate" if scheme == "dark" else "default"
                assert tab.evaluate("document.body.getAttribute('data-md-color-scheme')") == expected
                tab.keyboard.press("Space")
                tab.locator(".gdl-study__card").scroll_into_view_if_needed()
                width = tab.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                assert width[0] <= width[1] + 1, f"{name} {scheme}: the page is wider than the screen ({width})"
                tab.screenshot(path=str(shots / f"study-{name}-{scheme}.png"))
                _no_leaks(session)
            finally:
                session.close()
    # 80 cards due: every card of the site reviewed once, a year ago (and copies of the first, up to 80).
    due = [dict(cards[k % len(cards)], guid=cards[k]["guid"] if k < len(cards) else f"copy-{k}") for k in range(80)]
    session = Session(browser, server, viewport=DESKTOP, color_scheme="light", timezone_id="UTC")
    try:
        session.context.clock.set_fixed_time(START)
        session.context.route("**/downloads/study/cards.json", lambda route: route.fulfill(
            status=200, content_type="application/json",
            body=json.dumps({**json.loads(route.fetch().text()), "cards": due})))
        log = {"format": "gdl-ref-study-log", "version": 1, "settings": {"newPerDay": 20}, "known": [],
               "reviews": [{"guid": c["guid"], "time": "2025-01-05T06:00:00.000Z", "grade": 3} for c in due]}
        session.context.add_init_script(f"localStorage.getItem('{STORE}') || localStorage.setItem('{STORE}', {json.dumps(json.dumps(log))})")
        tab = _open(session)
        assert tab.locator(".gdl-study__due").inner_text() == "Due: 80"
        first_card_ms = tab.evaluate("() => window.__gdlStudyFirstCard")
        files = ["study/index.html", "assets/study/study.js", "assets/study/study.css", "downloads/study/cards.json",
                 "downloads/study/ts-fsrs.umd.js"]
        own = {f: (study_site / f).stat().st_size for f in files}
        measures = {
            "builder": any_site.builder,
            "first_card_ms_after_navigation_start_80_due": round(first_card_ms, 1),
            "page_bytes_loaded": weight,
            "study_files_bytes": own,
            "study_files_gzip_bytes": {f: len(gzip.compress((study_site / f).read_bytes())) for f in files},
        }
        (shots / "study-measures.json").write_text(json.dumps(measures, indent=2) + "\n", encoding="utf-8")
        assert weight >= sum(own.values())              # every Study file was loaded
        _no_leaks(session)
    finally:
        session.close()
