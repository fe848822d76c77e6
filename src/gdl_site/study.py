"""The Study page's data, written by the build step into ``docs/downloads/study/``.

The Study page (``docs/study.md``, its script ``docs/assets/study/study.js``) schedules the cards
with FSRS in the reader's browser. It needs two files that the build makes:

* ``ts-fsrs.umd.js``: the reference FSRS scheduler, the UMD bundle of the npm package ``ts-fsrs``
  (Ye et al., "A Stochastic Shortest Path Algorithm for Optimizing Spaced Repetition Scheduling",
  KDD 2022; the FSRS-6 model), copied from ``node_modules/`` where ``npm ci`` put the version that
  ``package-lock.json`` pins. A missing or different copy stops the build, saying which command to run.
* ``cards.json``: every card of the site, keyed by its GUID from ``cards.lock.json`` (the one the
  Anki deck uses, so a card keeps its schedule when it moves or is edited), with its page, title,
  question and answer as HTML (math as MathML, as on the pages), and the GUIDs of retired cards.
* ``index.json``: each card's ``page#anchor`` and its GUID, a few kilobytes, so that a chapter page can
  offer "Mark as known" / "Study this card" on each card without loading every card's text.

Every HTML field passes through :func:`card_html_for_study`, the sanitiser of the card exports.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import SiteError
from .files import GeneratedFolder

__all__ = ["STUDY_DIR", "FSRS_PACKAGE", "FSRS_BUNDLE", "fsrs_bundle", "study_cards", "study_index",
           "card_html_for_study", "write_study_assets"]

STUDY_DIR = "study"                          # under docs/downloads/
FSRS_PACKAGE = "ts-fsrs"
FSRS_BUNDLE = "dist/index.umd.js"            # sets the global FSRS
DATA_VERSION = 1                             # the shape of cards.json; the page refuses one it does not know
IMG_SRC = re.compile(r"""(<img\b[^>]*?\bsrc=)(["'])(.*?)\2""", re.I | re.S)
PLACEHOLDER = re.compile(r"GDLMATH(\d+)X")
STUDY_PLACEHOLDER = "GDLSTUDYMATH{}Z"
STUDY_MATH = re.compile(r"GDLSTUDYMATH(\d+)Z")
INSTALL = "run `npm ci` in the repository root (package-lock.json pins it; Node 20 or later)"


def _pinned_version(root: Path) -> str:
    """The version of ts-fsrs that ``package-lock.json`` pins."""
    lock = root / "package-lock.json"
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        return str(data["packages"][f"node_modules/{FSRS_PACKAGE}"]["version"])
    except FileNotFoundError:
        raise SiteError(f"{lock}: missing: the Study page's scheduler ({FSRS_PACKAGE}) is pinned there") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SiteError(f"{lock}: no pinned version of {FSRS_PACKAGE} ({exc.__class__.__name__}: {exc})") from None


def fsrs_bundle(root: Path) -> tuple[str, bytes]:
    """(version, bytes) of the ts-fsrs browser bundle under ``root/node_modules``.

    Raises:
        SiteError: the package is missing, or is not the version ``package-lock.json`` pins.
    """
    pinned = _pinned_version(root)
    package = root / "node_modules" / FSRS_PACKAGE
    bundle = package / FSRS_BUNDLE
    if not bundle.is_file():
        raise SiteError(f"{package.relative_to(root)}/{FSRS_BUNDLE} is missing, and the Study page needs it: {INSTALL}")
    try:
        installed = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise SiteError(f"{package.relative_to(root)}/package.json cannot be read ({exc}): {INSTALL}") from None
    if installed != pinned:
        raise SiteError(f"{package.relative_to(root)} is version {installed}, package-lock.json pins {pinned}: {INSTALL}")
    return pinned, bundle.read_bytes()


def card_html_for_study(fragment: str) -> str:
    """A card's HTML as the Study page may show it: through the card exports' sanitiser."""
    from gdl_site.cards.sanitise import clean_card_html

    return clean_card_html(fragment)


def _html_with_mathml(text: str, root: Path, inline: bool = False) -> str:
    """Card Markdown as HTML like the card exports make it, but with math as MathML (as the pages show it).

    The exports keep TeX for Anki's MathJax; a page of this site has no MathJax, so each formula is
    taken out first (`protect_math`), the rest rendered by `to_html`, and the formula put back as MathML.
    """
    from gdl_site.cards.mathml import to_mathml
    from gdl_site.cards.render import protect_math, readable_markdown, to_html

    protected, maths = protect_math(readable_markdown(text, root), root)
    protected = PLACEHOLDER.sub(lambda m: STUDY_PLACEHOLDER.format(m.group(1)), protected)
    out = to_html(protected, root, inline=inline)

    def mathml(match: re.Match[str]) -> str:
        anki = maths[int(match.group(1))]                 # \(tex\) or \[tex\], TeX escaped for HTML
        display = anki.startswith("\\[")
        return to_mathml(html.unescape(anki[2:-2]), display=display)

    return STUDY_MATH.sub(mathml, out)


def _site_relative_figures(fragment: str, page: PurePosixPath) -> str:
    """Point each relative ``<img src>`` at its path from the site's root (the page script prefixes the root)."""

    def point(match: re.Match[str]) -> str:
        src = html.unescape(match.group(3))
        if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I) or src.startswith("//"):
            return match.group(0)
        parts: list[str] = []
        for part in (PurePosixPath(src.lstrip("/")) if src.startswith("/") else page.parent / src).parts:
            if part == "..":
                if parts:
                    parts.pop()
            elif part != ".":
                parts.append(part)
        return f"{match.group(1)}{match.group(2)}{html.escape('/'.join(parts))}{match.group(2)}"

    return IMG_SRC.sub(point, fragment)


def page_url(docs_relative: PurePosixPath) -> str:
    """The URL of a page from the site's root, as both builders write it (directory URLs)."""
    stem = docs_relative.with_suffix("")
    if stem.name in {"index", "README"}:
        stem = stem.parent
    return "" if str(stem) in {"", "."} else f"{stem.as_posix()}/"


def study_cards(root: Path) -> dict[str, Any]:
    """The content of ``cards.json``: every card of ``root/docs`` and the GUIDs of the retired ones.

    Raises:
        SiteError: a card page has problems, or the lock file cannot be read.
    """
    from gdl_site.cards.export import CardProblems, load_cards
    from gdl_site.cards.lock import LOCK_NAME, LockError, assign_guids, read_lock

    docs = root / "docs"
    try:
        _, cards = load_cards([docs], root)
        entries = read_lock(root / LOCK_NAME)
    except CardProblems as problems:
        raise SiteError(f"the cards have problems, so the Study page was not built:\n{problems}") from None
    except LockError as error:
        raise SiteError(str(error)) from None
    guids, _, problems = assign_guids(cards, entries)
    if problems:
        raise SiteError("the cards have problems, so the Study page was not built:\n" + "\n".join(map(str, problems)))
    rows = []
    for card in cards:
        source = PurePosixPath(Path(card.file).as_posix())
        page = PurePosixPath(*source.parts[1:]) if source.parts[:1] == ("docs",) else source
        fields = {name: card_html_for_study(_site_relative_figures(_html_with_mathml(text, root, inline), page))
                  for name, text, inline in (("title", card.title, True), ("question", card.question, True),
                                             ("answer", card.answer, False))}
        rows.append({"guid": guids[card.key], "key": card.key, "page": page_url(page), "anchor": card.id,
                     "chapter": card.chapter_title, **fields})
    retired = sorted(entry.guid for entry in entries.values() if entry.retired)
    return {"version": DATA_VERSION, "cards": rows, "retired": retired}


def study_index(data: dict[str, Any]) -> dict[str, Any]:
    """The content of ``index.json``: ``{"page#anchor": guid}`` for every card of ``data`` (``cards.json``)."""
    return {"version": DATA_VERSION, "cards": {f"{c['page']}#{c['anchor']}": c["guid"] for c in data["cards"]}}


def write_study_assets(root: Path, downloads: GeneratedFolder) -> list[str]:
    """Write ``study/ts-fsrs.umd.js``, ``study/cards.json`` and ``study/index.json`` into the build's downloads folder.

    Returns the lines the build step prints. Raises SiteError (nothing written) when ts-fsrs is not
    installed as pinned, or the cards cannot be read.
    """
    version, bundle = fsrs_bundle(root)
    data = study_cards(root)
    data["scheduler"] = {"package": FSRS_PACKAGE, "version": version}
    downloads.write(f"{STUDY_DIR}/ts-fsrs.umd.js", bundle)
    downloads.write(f"{STUDY_DIR}/cards.json", json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    downloads.write(f"{STUDY_DIR}/index.json", json.dumps(study_index(data), separators=(",", ":")) + "\n")
    return [f"docs/downloads/{STUDY_DIR}/: ts-fsrs {version}, cards.json ({len(data['cards'])} cards, "
            f"{len(data['retired'])} retired)"]
