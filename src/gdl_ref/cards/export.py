"""Export cards: an Anki deck (.apkg), a CSV, or the flashcard text format.

- anki: one note per card in the deck "gdl-ref" (fixed deck and model ids), note GUID
  ``genanki.guid_for(chapter, id)`` so re-importing an updated deck updates the notes in place
  instead of duplicating them. Markdown is rendered to HTML; math keeps Anki's own delimiters
  ``\\(...\\)`` and ``\\[...\\]`` (Anki ships MathJax, so it renders offline); code is
  ``<pre><code>``; embedded sections (``--8<--``) are replaced by the package code they name.
- csv: one row per card (key, chapter, id, title, background, question, answer, source),
  Markdown text with embedded sections expanded.
- flashcards: the seed's text format (``#### Title {#id}``, background, ``:p question``,
  ``??x answer x??``, ``---``), the page source kept as it is, so that
  export -> `gdl-ref cards import` -> export gives the same bytes.

Only card pages are exported; a card page with problems stops the export (`CardProblems`).
"""

from __future__ import annotations

import csv
import html
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from .embeds import BLOCK as BLOCK_MARK
from .embeds import expand, snippet_refs
from .fences import classify
from .importer import KEYWORD_LINE
from .lock import LOCK_NAME, assign_guids, new_guid, read_lock, write_lock
from .model import Card, Page, Problem
from .validate import BLOCKS, DOCS as SITE_DOCS, INLINE_DOLLAR, validate_paths

__all__ = ["CardProblems", "DECK_ID", "MODEL_ID", "FORMATS", "build_deck", "export_cards", "load_cards",
           "note_guid", "to_flashcards", "expand_snippet", "csv_cell"]

MODEL_ID = 1_607_392_411      # fixed: Anki matches the note type across versions of the deck
DECK_ID = 2_059_400_187       # fixed: the deck "gdl-ref"
DECK_NAME = "gdl-ref"
FORMATS = ("anki", "csv", "flashcards")
FIELDS = ["Key", "Chapter", "Title", "Background", "Question", "Answer", "Source"]
CSS = """.card { font-family: system-ui, sans-serif; font-size: 18px; text-align: left; max-width: 46em; margin: auto; }
.chapter { color: #777; font-size: 14px; }
.question { font-weight: 600; margin-top: 1em; }
pre { background: #f5f5f5; padding: .6em; overflow-x: auto; font-size: 14px; }
.nightMode pre { background: #2b2b2b; }
.source { color: #999; font-size: 12px; margin-top: 1.5em; }"""
FRONT = ('<div class="chapter">{{Chapter}}</div><h3>{{Title}}</h3>'
         '<div class="background">{{Background}}</div><div class="question">{{Question}}</div>')
BACK = '{{FrontSide}}<hr id="answer"><div class="answer">{{Answer}}</div><div class="source">{{Source}}</div>'
# latex2mathml knows \argmax and \argmin; MathJax (in Anki) spells them with \operatorname*.
MATHJAX = {r"\argmax": r"\operatorname*{arg\,max}", r"\argmin": r"\operatorname*{arg\,min}"}
MATHJAX_SPELLING = re.compile(r"\\arg(max|min)(?![A-Za-z])")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MARKER_LINE = re.compile(r"^\s*<!--[-\s]*pytest[-.].*-->\s*$")


class CardProblems(ValueError):
    """Card pages with problems: nothing was exported. `.problems` lists them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the cards:\n" + "\n".join(map(str, problems)))


def note_guid(card: Card) -> str:
    """The GUID a card gets at its first export (the lock file keeps it after that; see gdl_ref.cards.lock)."""
    return new_guid(card)


def _find_root(paths: list[Path]) -> Path:
    """The folder with mkdocs.yml above the first path (snippets resolve against it), else the cwd."""
    for start in [Path(p).resolve() for p in paths[:1]]:
        for folder in [start, *start.parents]:
            if (folder / "mkdocs.yml").is_file():
                return folder
    return Path.cwd()


def load_cards(paths: list[Path | str], root: Path | str | None = None) -> tuple[list[Page], list[Card]]:
    """The card pages under paths and their cards; raises CardProblems when a card page has problems."""
    paths = [Path(p) for p in paths]
    root = Path(root) if root is not None else _find_root(paths)
    pages, problems = validate_paths(paths, root)
    card_pages = [p for p in pages if p.is_card_page]
    files = {p.file for p in card_pages} | {p.file for p in pages if not p.readable}
    blocking = [p for p in problems if p.file in files]
    if blocking:
        raise CardProblems(blocking)
    cards = [c for p in card_pages for c in p.cards]
    if not cards:
        named = ", ".join(map(str, paths))
        raise CardProblems([Problem(named, 0, "no cards here: a card page holds ## Title {#id} headings, "
                                              'each with a ??? question "..." (see CONTRIBUTING.md)')])
    return card_pages, cards


def expand_snippet(ref: str, root: Path) -> str:
    """The text pymdownx.snippets puts in place of `--8<-- "ref"` (see gdl_ref.cards.embeds.expand)."""
    return expand(ref, root)


def _readable_markdown(text: str, root: Path) -> str:
    """Page Markdown for reading elsewhere: embeds expanded, test markers dropped."""
    lines = text.splitlines()
    out: list[str] = []
    embeds = {f.line: f for f in classify(text, "<card>", root) if f.kind == "embed"}
    includes = dict(snippet_refs(lines))
    k = 0
    while k < len(lines):
        fence = embeds.get(k + 1)
        if fence:
            code = "\n".join(expand_snippet(r, root) for r in fence.refs)
            title = re.search(r'title="([^"]*)"', fence.info)
            out.append(f"{fence.indent}```{fence.lang or 'python'}")
            out += [fence.indent + ln if ln else "" for ln in code.splitlines()]
            out.append(f"{fence.indent}```")
            if title:
                out.append(f"{fence.indent}*From `{title.group(1)}`.*")
            k = fence.end_line
            continue
        if k + 1 in includes:  # Markdown included from another file (e.g. a benchmark table), at this line's indent
            indent = lines[k][:len(lines[k]) - len(lines[k].lstrip())]
            out += [indent + ln if ln else "" for ln in expand_snippet(includes[k + 1], root).splitlines()]
        elif not MARKER_LINE.match(lines[k]) and not BLOCK_MARK.match(lines[k]):
            out.append(lines[k])
        k += 1
    return "\n".join(out)


def _protect_math(text: str, root: Path) -> tuple[str, list[str]]:
    """Replace each formula outside code by a placeholder; return the text and the Anki math."""
    maths: list[str] = []

    def keep(tex: str, display: bool) -> str:
        tex = MATHJAX_SPELLING.sub(lambda m: MATHJAX[m.group(0)], tex)
        maths.append(("\\[" if display else "\\(") + html.escape(tex, quote=False) + ("\\]" if display else "\\)"))
        return f"GDLMATH{len(maths) - 1}X"

    fenced = {k for f in classify(text, "<card>", root) for k in range(f.line, f.end_line + 1)}
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if not para:
            return
        joined = "\n".join(para)
        block = next((m for b in BLOCKS if (m := b.match(joined.strip()))), None)
        if block:
            out.append(para[0][: len(para[0]) - len(para[0].lstrip())] + keep(block.group(1).strip(), True))
        else:
            parts = re.split(r"(`+[^`]*`+)", joined)  # inline code is not math
            out.extend("".join(p if p.startswith("`") else INLINE_DOLLAR.sub(lambda m: keep(m.group(1), False), p)
                               for p in parts).split("\n"))
        para.clear()

    for k, line in enumerate(text.splitlines(), start=1):
        if k in fenced or not line.strip():
            flush()
            out.append(line)
        else:
            para.append(line)
    flush()
    return "\n".join(out), maths


def _html(text: str, root: Path, inline: bool = False) -> str:
    """Markdown to HTML for Anki: math as \\( \\) / \\[ \\], code as <pre><code>."""
    import markdown

    protected, maths = _protect_math(_readable_markdown(text, root), root)
    out = markdown.markdown(protected, extensions=["fenced_code", "tables", "sane_lists", "admonition"])
    if inline and out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return re.sub(r"GDLMATH(\d+)X", lambda m: maths[int(m.group(1))], out)


def _source(card: Card) -> str:
    return f"{card.file}:{card.line}"


def write_anki(cards: list[Card], out: Path, root: Path, timestamp: float | None = None,
               guids: dict[str, str] | None = None) -> None:
    """An .apkg with one note per card; GUIDs by card key from the lock file (see gdl_ref.cards.lock)."""
    import genanki

    model = genanki.Model(MODEL_ID, "gdl-ref card", fields=[{"name": f} for f in FIELDS],
                          templates=[{"name": "Card", "qfmt": FRONT, "afmt": BACK}], css=CSS)
    deck = genanki.Deck(DECK_ID, DECK_NAME, description="Generative deep learning as cards (gdl-ref).")
    for card in cards:
        fields = [card.key, html.escape(card.chapter_title), _html(card.title, root, inline=True),
                  _html(card.background, root), _html(card.question, root, inline=True),
                  _html(card.answer, root), html.escape(_source(card))]
        deck.add_note(genanki.Note(model=model, fields=fields, guid=(guids or {}).get(card.key) or note_guid(card), tags=card.tags))
    genanki.Package(deck).write_to_file(str(out), timestamp=timestamp)


def csv_cell(text: str) -> str:
    """A cell that a spreadsheet shows as text: one starting with = + - @, a tab or a CR gets a leading '.

    Spreadsheets run such a cell as a formula (OWASP, "CSV Injection"); the quote makes it text.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(cards: list[Card], out: Path, root: Path) -> None:
    """One row per card; Markdown text with embedded sections expanded, every cell guarded by csv_cell."""
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "chapter", "id", "title", "background", "question", "answer", "source"])
        for c in cards:
            writer.writerow([csv_cell(cell) for cell in (
                c.key, c.chapter_title, c.id, c.title, _readable_markdown(c.background, root),
                c.question, _readable_markdown(c.answer, root), _source(c))])


def _escape_keywords(text: str) -> str:
    """Prefix "\\" to lines of card text that the flashcard format would read as syntax (:p, ??x, x??, ---)."""
    fenced = {k for f in classify(text) for k in range(f.line + 1, f.end_line)}
    lines = text.splitlines()
    for k, line in enumerate(lines, start=1):
        body = line.lstrip()
        if k not in fenced and KEYWORD_LINE.match(body.lstrip("\\")):
            lines[k - 1] = line[: len(line) - len(body)] + "\\" + body
    return "\n".join(lines)


def to_flashcards(pages: list[Page]) -> str:
    """The flashcard text format of the pages' cards (the page source, unexpanded)."""
    chunks: list[str] = []
    for page in pages:
        chunks.append(f"# Flashcards: {page.title}\n\n")
        if page.intro:
            chunks.append(_escape_keywords(page.intro) + "\n\n")
        chunks.append("---\n\n")
        for c in page.cards:
            chunks.append(f"#### {c.title} {{#{c.id}}}\n{_escape_keywords(c.background)}\n\n:p {c.question}\n"
                          f"??x\n{_escape_keywords(c.answer)}\nx??\n\n---\n\n")
    return "".join(chunks)


def _replace_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Call write(temporary sibling of out), then rename it onto out: out is never half-written."""
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def export_cards(paths: list[Path | str], fmt: str, out: Path | str, root: Path | str | None = None,
                 timestamp: float | None = None, force: bool = False, lock: Path | str | None = None,
                 record: bool = True) -> list[Card]:
    """Write the cards of the pages under paths to out in fmt (anki, csv or flashcards).

    Note GUIDs come from the lock file (default root/cards.lock.json); with record, the ids of
    cards under root/docs that it lacks are added to it after the export (never changing an entry).
    Returns the cards written. Raises CardProblems (nothing written) when a card page has
    problems, a page cannot be read, a card uses a retired id or there are no cards;
    FileExistsError when out exists and force is False; LockError for a malformed lock file;
    ValueError for an unknown format. out is written whole or not at all.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    paths = [Path(p) for p in paths]
    root = Path(root) if root is not None else _find_root(paths)
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: pass --force to overwrite it")
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder: name a file to write")
    pages, cards = load_cards(paths, root)
    lock_path = Path(lock) if lock is not None else root / LOCK_NAME
    entries = read_lock(lock_path)
    guids, added, problems = assign_guids(cards, entries, lock_path.name)
    if problems:
        raise CardProblems(problems)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "anki":
        _replace_atomically(out, lambda tmp: write_anki(cards, tmp, root, timestamp, guids))
    elif fmt == "csv":
        _replace_atomically(out, lambda tmp: write_csv(cards, tmp, root))
    else:
        _replace_atomically(out, lambda tmp: tmp.write_text(to_flashcards(pages), encoding="utf-8"))
    site = {c.id for c in cards if Path(c.file).parts[:1] == (SITE_DOCS,)}
    first_published = {i: e for i, e in added.items() if i in site}
    if record and first_published:
        write_lock(lock_path, {**entries, **first_published})
    return cards


def build_deck(docs_dir: Path | str, out_path: Path | str) -> int:
    """Write the Anki deck of every card under docs_dir to out_path (for the site build); returns the count."""
    docs_dir = Path(docs_dir)
    return len(export_cards([docs_dir], "anki", out_path, root=docs_dir.resolve().parent))
