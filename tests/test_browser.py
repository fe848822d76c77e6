"""The built site as a reader meets it, in a real browser (Debian's Chromium, driven by Playwright).

One browser for the session. Every page gets a light pass at a phone's width (375 px): no console
error, no failed request, no request that leaves 127.0.0.1 (everything else is aborted and recorded),
math rendered as MathML with no TeX left in the text, every card opening on click, and nothing wider
than the screen. Representative pages get the interactive checks: the copy button, search (a web
worker over the site's own index), the light/dark palette and instant navigation. Screenshots of the
home page, Chapter 1 with a card open, and a family page, light and dark, go to artifacts/screenshots/.

It runs on both builds, MkDocs's and Zensical's (the ``any_site`` fixture). Skipped, with the reason,
where Chromium is absent. Run them alone with ``pytest -m browser``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import ROOT, SiteBuild
from site_server import CHROMIUM_ARGS, SKIP_REASON, SiteServer, built_pages, find_chromium, require_site

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHAPTER = "chapters/generative-modelling/"
FAMILY_PAGES = ("families/flows/", "families/vae/", "families/autoregressive/", "families/diffusion/",
                "families/gan/", "families/ebm/", "families/mle/")
TIMEOUT_MS = 20_000

# TeX that survived the build: delimiters, a $...$ pair around TeX, or a bare command in prose.
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]"
    r"|\$[^$\n]{0,120}(?:\\[A-Za-z]+|[\^_{}])[^$\n]{0,120}\$"
    r"|\$[A-Za-z]\$"
    r"|\\(?:frac|theta|mathbb|mathcal|mathbf|operatorname|sum|prod|int|log|exp|sqrt|left|right|cdot|mid|hat|tilde|mu|sigma|epsilon|nabla|partial|text|begin|end)\b"
)
# Source math: $...$ or $$ outside code, after fences and inline code are removed.
SOURCE_FENCE = re.compile(r"^( *)(```|~~~).*?^\1\2", re.M | re.S)
SOURCE_CODE = re.compile(r"`[^`\n]*`")
SOURCE_MATH = re.compile(r"\$\$|(?<![\\$])\$(?=\S)[^$\n]+?(?<=\S)\$")

# Runs in the page (given the repository path): prose text (code, math, scripts removed), MathML state,
# overflow culprits, notebook stderr, and paths of the building machine shown to the reader.
PAGE_STATE_JS = r"""
(root) => {
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, math, script, style, .highlight, .jp-OutputArea, .jp-CodeCell .jp-InputArea, .md-source').forEach(e => e.remove());
  const maths = [...document.querySelectorAll('math')];
  // MathML that a browser lays out but a reader sees wrong: an ASCII tilde or caret set as a letter
  // (TeX's \sim is U+223C), or a word set as separate italic letters (an operator name such as
  // arg max broken into one <mi> a letter).
  const misset = (maths) => {
    const kinds = {};
    const add = (kind, m) => { (kinds[kind] = kinds[kind] || []).push(m.textContent.replace(/\s+/g, '').slice(0, 30)); };
    for (const m of maths) {
      if ([...m.querySelectorAll('mi')].some(e => ['~', '^'].includes(e.textContent.trim()))) add('an ASCII ~ or ^ set as a letter (\\sim should be U+223C)', m);
      for (const row of m.querySelectorAll('mrow, math')) {
        let run = 0, hit = false;
        for (const c of row.children) {
          const tag = c.tagName.toLowerCase();
          const italicLetter = tag === 'mi' && /^[A-Za-z]$/.test(c.textContent.trim()) && c.getAttribute('mathvariant') !== 'normal';
          run = italicLetter ? run + 1 : (tag === 'mspace' ? run : 0);
          if (run >= 3) { hit = true; break; }
        }
        if (hit) { add('a word set as separate italic letters (an operator name like arg max broken into <mi>s)', m); break; }
      }
    }
    return Object.entries(kinds).map(([kind, list]) => `${kind}: ${list.length} formula(s), e.g. ${list[0]}`);
  };
  const doc = document.documentElement;
  const width = doc.clientWidth;
  const wide = [];
  if (doc.scrollWidth > width + 1) {
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= width + 1) continue;
      let clipped = false;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX) && p.getBoundingClientRect().right <= width + 1) { clipped = true; break; }
      }
      if (clipped) continue;
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
      wide.push(name + ' (right edge ' + Math.round(r.right) + ' px)');
      if (wide.length >= 5) break;
    }
  }
  return {
    text: clone.textContent,
    math: maths.length,
    unrendered: [...new Set(maths.filter(m => !getComputedStyle(m).display.includes('math')).map(m => getComputedStyle(m).display))],
    misset: misset(maths),
    arithmatex: document.querySelectorAll('.arithmatex').length,
    arithmatexWithoutMath: [...document.querySelectorAll('.arithmatex')].filter(e => !e.querySelector('math')).length,
    scrollWidth: doc.scrollWidth,
    clientWidth: width,
    wide: wide,
    stderr: [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.textContent.replace(/\s+/g, ' ').trim().slice(0, 160)),
    localPaths: [...new Set(article.textContent.split(/\s+/).filter(w => ['site-packages/', '/.venv/', root + '/'].some(n => w.includes(n))).map(w => w.slice(0, 120)))].slice(0, 5),
    codeBlocks: document.querySelectorAll('article .highlight pre > code').length,
    copyButtons: document.querySelectorAll('article [data-md-type="copy"], article .md-clipboard').length,
  };
}
"""

# The state of every card on the page: its question, whether it is open, whether its answer shows.
CARDS_JS = """
() => [...document.querySelectorAll('article details.question')].map(card => {
  const answer = [...card.children].filter(c => c.tagName !== 'SUMMARY');
  const summary = card.querySelector(':scope > summary');
  return {
    question: summary ? summary.textContent.replace(/\\s+/g, ' ').trim().slice(0, 80) : '(no summary)',
    open: card.open,
    answerShows: answer.some(c => c.getBoundingClientRect().height > 0),
  };
})
"""


@dataclass
class PageReport:
    """What the light pass saw on one page."""

    page: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    math: int = 0
    math_unrendered: list[str] = field(default_factory=list)
    math_misset: list[str] = field(default_factory=list)
    arithmatex_without_math: int = 0
    source_has_math: bool | None = None
    cards: int = 0
    cards_not_opening: list[str] = field(default_factory=list)
    overflow: str = ""
    code_blocks: int = 0
    copy_buttons: int = 0
    stderr: list[str] = field(default_factory=list)
    local_paths: list[str] = field(default_factory=list)


def _source_of(page: str) -> Path | None:
    """The Markdown (or notebook) a page was built from, when it can be found under docs/."""
    stem = ROOT / "docs" / (page.rstrip("/") or "index")
    for candidate in (stem.with_suffix(".md"), stem / "index.md", stem.with_suffix(".ipynb")):
        if candidate.is_file():
            return candidate
    return None


def source_has_math(text: str) -> bool:
    """Whether Markdown holds $...$ or $$ math outside code."""
    return bool(SOURCE_MATH.search(SOURCE_CODE.sub("", SOURCE_FENCE.sub("", text))))


def _source_markdown(source: Path) -> str:
    """The prose of a page's source: the file itself, or a notebook's Markdown cells (not its code)."""
    text = source.read_text(encoding="utf-8")
    if source.suffix != ".ipynb":
        return text
    cells = json.loads(text).get("cells", [])
    return "\n\n".join("".join(cell.get("source", "")) for cell in cells if cell.get("cell_type") == "markdown")


def _raw_tex(text: str) -> list[str]:
    found = []
    for match in RAW_TEX.finditer(text):
        start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
        found.append(" ".join(text[start:end].split()))
    return found[:5]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site_dir(any_site: SiteBuild) -> Path:
    """The site as MkDocs builds it, then as Zensical does: every test of this module runs on both."""
    return require_site(any_site.site_dir, any_site.log)


@pytest.fixture(scope="module")
def server(site_dir: Path) -> Iterator[SiteServer]:
    with SiteServer(site_dir) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = find_chromium()
    if executable is None:
        pytest.skip(SKIP_REASON)
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the `playwright` package (the test extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Session:
    """A browser context whose requests are confined to the site, with what each page logged."""

    def __init__(self, browser: Any, server: SiteServer, **options: Any) -> None:
        self.server = server
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.report = PageReport("")
        self.context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.server.origin + "/"):
            route.continue_()
        else:
            self.report.external_requests.append(url)
            route.abort()

    def open(self, page_path: str) -> Any:
        """A new tab on ``page_path`` (relative to the site root), loaded, with its events recorded."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.report = PageReport(page_path)
        tab = self.context.new_page()
        tab.on("console", self._console)
        tab.on("pageerror", lambda error: self.report.console_errors.append(f"uncaught: {error}"))
        tab.on("requestfailed", self._failed)
        tab.on("response", self._response)
        tab.goto(self.server.url(page_path), wait_until="load")
        try:
            tab.wait_for_load_state("networkidle", timeout=5_000)
        except PlaywrightTimeout:  # a page still talking after 5 s is reported by its requests, not here
            pass
        return tab

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if where in self.report.external_requests:  # the refusal of an external request: reported there
            return
        self.report.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _failed(self, request: Any) -> None:
        if request.url in self.report.external_requests:
            return
        self.report.failed_requests.append(f"{request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.report.failed_requests.append(f"{response.url}: HTTP {response.status}")

    def close(self) -> None:
        self.context.close()


def _light_pass(session: Session, page: str) -> PageReport:
    tab = session.open(page)
    report = session.report
    before = tab.evaluate(CARDS_JS)
    report.cards = len(before)
    report.cards_not_opening = [f"{card['question']!r} is open before any click" for card in before if card["open"]]
    # A click event on each question (the mouse clicks on Chapter 1 are in the screenshot and copy tests).
    tab.evaluate("() => document.querySelectorAll('article details.question:not([open]) > summary').forEach(s => s.click())")
    for card, after in zip(before, tab.evaluate(CARDS_JS)):
        if not card["open"] and not (after["open"] and after["answerShows"]):
            report.cards_not_opening.append(f"{card['question']!r}: open={after['open']}, answer shows={after['answerShows']}")
    state = tab.evaluate(PAGE_STATE_JS, str(ROOT))
    report.raw_tex = _raw_tex(state["text"])
    report.math, report.math_unrendered, report.math_misset = state["math"], state["unrendered"], state["misset"]
    report.arithmatex_without_math = state["arithmatexWithoutMath"]
    source = _source_of(page)
    if source is not None:
        report.source_has_math = source_has_math(_source_markdown(source))
    if state["scrollWidth"] > state["clientWidth"] + 1:
        report.overflow = f"scrollWidth {state['scrollWidth']} > clientWidth {state['clientWidth']}; widest: {state['wide']}"
    report.code_blocks, report.copy_buttons = state["codeBlocks"], state["copyButtons"]
    report.stderr, report.local_paths = state["stderr"], state["localPaths"]
    tab.close()
    return report


@pytest.fixture(scope="module")
def light_pass(browser: Any, server: SiteServer, site_dir: Path) -> dict[str, PageReport]:
    """Every built page, opened once at 375 px wide, every card clicked open."""
    session = Session(browser, server, viewport=PHONE, color_scheme="light", device_scale_factor=1)
    try:
        return {page: _light_pass(session, page) for page in built_pages(site_dir)}
    finally:
        session.close()


@pytest.fixture()
def desktop(browser: Any, server: SiteServer) -> Iterator[Session]:
    session = Session(browser, server, viewport=DESKTOP, color_scheme="light")
    session.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.origin)
    yield session
    session.close()


def _problems(reports: dict[str, PageReport], attribute: str) -> list[str]:
    return [f"{page or '(home)'}: {item}" for page, report in reports.items() for item in getattr(report, attribute)]


def _family_page(site_dir: Path) -> str:
    for page in FAMILY_PAGES:
        if (site_dir / page / "index.html").is_file():
            return page
    pytest.skip(f"no family page is built yet (looked for {', '.join(FAMILY_PAGES)})")


# --------------------------------------------------------------------------------- every page, light pass


def test_every_page_is_visited(light_pass: dict[str, PageReport], site_dir: Path) -> None:
    assert "" in light_pass and len(light_pass) == len(built_pages(site_dir))


# What each page must have none of, and what a failure is called.
NONE_OF = {
    "console_errors": "console errors (and uncaught exceptions)",
    "failed_requests": "failed requests (the site's own files)",
    "external_requests": "requests to other hosts, aborted: math, fonts, search and scripts must come from the site",
    "math_misset": "MathML a reader sees wrongly (an ASCII tilde for \\sim, arg max as separate italic letters)",
    "stderr": "notebook cells that printed to stderr (warnings the reader should not see)",
    "local_paths": "paths of the machine that built the site, shown to the reader",
}


@pytest.mark.parametrize("attribute", list(NONE_OF))
def test_every_page_has_none_of(light_pass: dict[str, PageReport], attribute: str) -> None:
    problems = sorted(set(_problems(light_pass, attribute)))
    assert problems == [], f"{NONE_OF[attribute]}:\n" + "\n".join(problems)


def test_math_is_rendered_and_no_tex_is_left(light_pass: dict[str, PageReport]) -> None:
    problems = _problems(light_pass, "raw_tex")
    for page, report in light_pass.items():
        if report.source_has_math and report.math == 0:
            problems.append(f"{page or '(home)'}: the source has math but the page has no MathML")
        if report.math_unrendered:
            problems.append(
                f"{page or '(home)'}: <math> with CSS display {report.math_unrendered} is laid out as a plain box,"
                " not as math (use `display: block math` / `inline math`)"
            )
        if report.arithmatex_without_math:
            problems.append(f"{page or '(home)'}: {report.arithmatex_without_math} arithmatex wrappers without MathML")
    assert problems == [], "math problems:\n" + "\n".join(problems)
    assert sum(report.math for report in light_pass.values()) > 0, "no page has any MathML"


def test_every_card_opens_on_click_to_show_its_answer(light_pass: dict[str, PageReport]) -> None:
    problems = _problems(light_pass, "cards_not_opening")
    assert problems == [], "cards that do not open to an answer:\n" + "\n".join(problems)
    assert sum(report.cards for report in light_pass.values()) > 0, "no page has any card"


def test_no_horizontal_overflow_on_a_phone(light_pass: dict[str, PageReport]) -> None:
    problems = [f"{page or '(home)'}: {report.overflow}" for page, report in light_pass.items() if report.overflow]
    assert problems == [], f"pages wider than a {PHONE['width']} px screen (cards open):\n" + "\n".join(problems)


def test_every_code_block_has_a_copy_button(light_pass: dict[str, PageReport]) -> None:
    problems = [f"{page or '(home)'}: {r.code_blocks} code blocks, {r.copy_buttons} copy buttons"
                for page, r in light_pass.items() if r.copy_buttons < r.code_blocks]
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------------- interactive, representative pages


@pytest.mark.parametrize("which", ["chapter", "family"])
def test_copy_button_copies_the_code(desktop: Session, site_dir: Path, which: str) -> None:
    page = CHAPTER if which == "chapter" else _family_page(site_dir)
    if not (site_dir / page / "index.html").is_file():
        pytest.skip(f"{page} is not built yet")
    tab = desktop.open(page)
    block = tab.locator("article .highlight:has(pre > code)").first
    if block.count() == 0:
        pytest.skip(f"{page} has no code block")
    card = block.locator("xpath=ancestor::details[1]")
    if card.count() and not card.evaluate("c => c.open"):
        card.locator(":scope > summary").click()
    expected = block.locator("pre > code").evaluate("c => c.textContent").rstrip()
    block.hover()
    block.locator('[data-md-type="copy"], .md-clipboard').first.click()
    tab.wait_for_function("expected => navigator.clipboard.readText().then(t => t.trimEnd() === expected)", arg=expected, timeout=5_000)
    copied = tab.evaluate("navigator.clipboard.readText()")
    assert copied.rstrip() == expected and copied.strip(), f"{page}: copied {copied!r}, expected {expected!r}"
    assert desktop.report.console_errors == []


def _rarest_words(text: str, site_dir: Path, count: int = 2) -> str:
    """The ``count`` words of ``text`` (five letters or more) that the fewest entries of the search index hold."""
    mkdocs_index, zensical_index = site_dir / "search" / "search_index.json", site_dir / "search.json"
    if mkdocs_index.is_file():
        entries = json.loads(mkdocs_index.read_text(encoding="utf-8"))["docs"]
    else:  # Zensical's index: the same entries under "items"
        entries = json.loads(zensical_index.read_text(encoding="utf-8"))["items"]
    haystacks = [f"{entry.get('title', '')} {entry.get('text', '')}".lower() for entry in entries]
    words = {word.lower() for word in re.findall(r"[A-Za-z]{5,}", text)}
    assert words, f"no word of five letters or more in {text!r}"
    ranked = sorted(sorted(words), key=lambda word: (sum(word in hay for hay in haystacks), -len(word)))
    return " ".join(ranked[:count])


def test_search_finds_a_card_by_a_word_of_its_question(desktop: Session, site_dir: Path) -> None:
    if not (site_dir / CHAPTER / "index.html").is_file():
        pytest.skip(f"{CHAPTER} is not built yet")
    tab = desktop.open(CHAPTER)
    question = " ".join(tab.locator("article details.question > summary").first.inner_text().split())
    card_id = tab.locator("article details.question").first.evaluate(
        "c => { for (let e = c.previousElementSibling; e; e = e.previousElementSibling) if (/^H[1-6]$/.test(e.tagName) && e.id) return e.id; return ''; }"
    )
    word = _rarest_words(question, site_dir)  # two words: one alone can be common enough to rank the card low
    if tab.locator(".md-search__button").count():  # Zensical: a button opens a dialog with a combobox
        tab.locator(".md-search__button").first.click()
        box = tab.locator('input[role="combobox"][aria-label="Search"]')
        box.press_sequentially(word, delay=20)
        results = f'[id="{box.get_attribute("aria-controls")}"]'
    else:  # Material: the header's search input
        tab.locator("label.md-search__icon, .md-search__input").first.click()
        tab.locator(".md-search__input").press_sequentially(word, delay=20)  # typed: search listens to keys
        results = ".md-search-result"
    links = tab.locator(f"{results} a")
    links.first.wait_for(state="attached", timeout=TIMEOUT_MS)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # results can come in more than one batch: wait for the card's link, then read what is listed
        tab.locator(f'{results} a[href*="{CHAPTER}"][href*="#{card_id}"]').first.wait_for(state="attached", timeout=TIMEOUT_MS)
    except PlaywrightTimeout:
        pass  # the assertion below lists what was found
    hrefs = links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    found = [urlsplit(href) for href in hrefs if href]
    assert any(CHAPTER in url.path and url.fragment == card_id for url in found), (
        f"searching {word!r} (words of {question!r}) did not find {CHAPTER}#{card_id}: {hrefs[:10]}"
    )
    assert desktop.report.console_errors == [] and desktop.report.failed_requests == []


def test_palette_toggle_switches_light_and_dark(desktop: Session) -> None:
    tab = desktop.open("")
    seen: dict[str, str] = {}
    for _ in range(4):
        scheme = tab.evaluate("document.body.getAttribute('data-md-color-scheme')")
        seen.setdefault(scheme, tab.evaluate("getComputedStyle(document.body).backgroundColor"))
        tab.locator("form[data-md-component='palette'] label:visible").first.click()
    assert {"default", "slate"} <= set(seen), f"schemes seen while toggling: {seen}"
    assert seen["default"] != seen["slate"], f"light and dark share the background {seen['default']}"
    # The choice survives a reload (Material keeps it in localStorage).
    scheme = tab.evaluate("document.body.getAttribute('data-md-color-scheme')")
    tab.reload()
    assert tab.evaluate("document.body.getAttribute('data-md-color-scheme')") == scheme


def test_instant_navigation_keeps_math_and_cards_working(desktop: Session, site_dir: Path) -> None:
    if not (site_dir / CHAPTER / "index.html").is_file():
        pytest.skip(f"{CHAPTER} is not built yet")
    tab = desktop.open("")
    tab.evaluate("window.__notReloaded = true")
    tab.locator(f"article a[href*='{CHAPTER}']").first.click()  # Material makes hrefs absolute
    tab.wait_for_url(f"**/{CHAPTER}*")
    tab.locator("article h1").first.wait_for()
    assert tab.evaluate("window.__notReloaded === true"), "the link did a full reload: instant navigation is off"
    card = tab.locator("article details.question").first
    card.locator(":scope > summary").click()
    assert card.evaluate("c => c.open")
    assert tab.locator("article math").count() > 0
    assert desktop.report.console_errors == [] and desktop.report.failed_requests == []


def test_a_missing_page_gets_the_styled_404_page(desktop: Session) -> None:
    """GitHub Pages serves 404.html for any missing path; its absolute links must work from any depth."""
    tab = desktop.context.new_page()
    failed: list[str] = []
    tab.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    response = tab.goto(desktop.server.url("no/such/page/"), wait_until="load")
    assert response is not None and response.status == 404
    assert "404" in tab.locator("article h1, h1").first.inner_text()
    assert tab.evaluate("getComputedStyle(document.querySelector('.md-header')).position") in {"sticky", "fixed"}, "no theme CSS"
    assert failed == [desktop.server.url("no/such/page/")], f"only the page itself should 404: {failed}"
    assert desktop.report.external_requests == []


def _download(desktop: Session, tab: Any, link_text: str) -> bytes:
    """Follow the page's link named ``link_text`` as a reader's download would, and return the body."""
    href = tab.locator("article a", has_text=link_text).first.evaluate("a => a.href")
    assert href.startswith(desktop.server.origin + "/"), f"{link_text!r} links off the site: {href}"
    response = desktop.context.request.get(href)
    assert response.ok, f"{href}: HTTP {response.status}"
    return response.body()


def test_the_home_page_offers_the_deck_the_csv_and_the_crowdanki_json(desktop: Session) -> None:
    tab = desktop.open("")
    assert _download(desktop, tab, "Anki deck")[:2] == b"PK"  # an .apkg is a zip archive
    assert _download(desktop, tab, "CSV file").decode("utf-8").count("\n") > 10
    crowdanki = _download(desktop, tab, "CrowdAnki JSON")
    with zipfile.ZipFile(io.BytesIO(crowdanki)) as archive:
        deck = next(name for name in archive.namelist() if name.endswith("deck.json"))
        notes = json.loads(archive.read(deck))["notes"]
    assert len(notes) > 10 and all(note["guid"] for note in notes)
    assert desktop.report.external_requests == []


def test_a_family_page_offers_its_runnable_blocks_as_a_notebook(desktop: Session, site_dir: Path) -> None:
    tab = desktop.open(_family_page(site_dir))
    notebook = json.loads(_download(desktop, tab, "notebook to download"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert "pip install gdl-ref==" in "".join(code[0]["source"]), "the first code cell installs the release"
    assert len(code) > 1


# What a notebook page shows: its scheme, the colour of its first code cell's text, and each figure's
# loaded width. MkDocs renders the page with mkdocs-jupyter (.jp-InputArea-editor), Zensical from Markdown.
NOTEBOOK_JS = """
() => {
  const code = document.querySelector('article .jp-InputArea-editor pre, article .highlight pre');
  return {
    scheme: document.body.getAttribute('data-md-color-scheme'),
    text: code ? getComputedStyle(code).color : null,
    figures: [...document.querySelectorAll('article img')].map(img => img.complete ? img.naturalWidth : 0),
  };
}
"""


def _luminance(rgb: str) -> float:
    red, green, blue = (int(x) for x in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_notebook_page_shows_its_figures_in_light_and_dark(browser: Any, server: SiteServer, site_dir: Path,
                                                             scheme: str) -> None:
    """Each figure loads, and the code follows the reader's scheme: dark text on light, light on dark."""
    page = "notebooks/vae/"
    if not (site_dir / page / "index.html").is_file():
        pytest.skip(f"{page} is not built yet")
    session = Session(browser, server, viewport=DESKTOP, color_scheme=scheme)
    try:
        state = session.open(page).evaluate(NOTEBOOK_JS)
        assert state["scheme"] == ("slate" if scheme == "dark" else "default")
        assert state["text"], f"{page}: no code cell"
        light_text = _luminance(state["text"]) > 0.5
        assert light_text == (scheme == "dark"), f"{page}: code text {state['text']} in the {scheme} scheme"
        assert len(state["figures"]) >= 4 and all(width > 0 for width in state["figures"]), state["figures"]
        assert session.report.console_errors == [] and session.report.failed_requests == []
        assert session.report.external_requests == []
    finally:
        session.close()


def test_a_card_says_how_to_report_it_and_what_verified_it(desktop: Session, site_dir: Path) -> None:
    if not (site_dir / CHAPTER / "index.html").is_file():
        pytest.skip(f"{CHAPTER} is not built yet")
    tab = desktop.open(CHAPTER)
    card = tab.locator("article details.question").first
    card.locator(":scope > summary").click()
    meta = tab.locator("article .card-meta").first
    assert re.search(r"(Verified with|not verified).*gdl-ref|gdl-ref \S+ on \d{4}-\d{2}-\d{2}", meta.inner_text())
    report = meta.locator("a.card-report").get_attribute("href")
    assert report.startswith("https://github.com/") and "/issues/new?" in report
    assert "sample-space" in report  # the card id travels in the prefilled issue
    assert desktop.report.external_requests == []  # a link to follow, not a request the page makes


# ---------------------------------------------------------------------------------------------- screenshots


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots(browser: Any, server: SiteServer, site_dir: Path, any_site: SiteBuild, scheme: str) -> None:
    """Home, Chapter 1 with its first card open, and a family page, for a person to look at
    (artifacts/screenshots/ for the MkDocs build, artifacts/screenshots/zensical/ for Zensical's)."""
    shots = SCREENSHOTS if any_site.builder == "mkdocs" else SCREENSHOTS / any_site.builder
    shots.mkdir(parents=True, exist_ok=True)
    pages = {"home": ""}
    if (site_dir / CHAPTER / "index.html").is_file():
        pages["chapter"] = CHAPTER
    family = next((p for p in FAMILY_PAGES if (site_dir / p / "index.html").is_file()), None)
    if family:
        pages["family-" + family.strip("/").split("/")[-1]] = family
    written = []
    for viewport_name, viewport in (("", DESKTOP), ("-phone", PHONE)):
        if viewport_name and scheme == "dark":
            continue
        session = Session(browser, server, viewport=viewport, color_scheme=scheme)
        try:
            for name, page in pages.items():
                tab = session.open(page)
                expected = "slate" if scheme == "dark" else "default"
                assert tab.evaluate("document.body.getAttribute('data-md-color-scheme')") == expected, f"{page}: {scheme}"
                if name == "chapter":
                    card = tab.locator("article details.question").first
                    card.locator(":scope > summary").click()
                    heading = card.locator("xpath=preceding-sibling::*[self::h2 or self::h3][1]")
                    # Scroll the card's heading to just below the sticky header, downwards from the top
                    # (scrolling up would bring out the "Back to top" button over the heading).
                    tab.evaluate("window.scrollTo(0, 0)")
                    tab.wait_for_timeout(100)
                    (heading if heading.count() else card).evaluate(
                        "e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY"
                        " - document.querySelector('.md-header').offsetHeight - 16)"
                    )
                    tab.wait_for_timeout(300)  # let the header settle after the scroll
                path = shots / f"{name}-{scheme}{viewport_name}.png"
                tab.screenshot(path=str(path))
                written.append(path)
                tab.close()
        finally:
            session.close()
    assert all(path.stat().st_size > 10_000 for path in written), written
