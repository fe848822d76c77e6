"""Export cards: an Anki deck (.apkg), its CrowdAnki JSON, a CSV, or the flashcard text format.

- anki: one note per card in the deck "gdl-ref" (the note type and deck of gdl_site.cards.notetype),
  note GUIDs from the lock file (gdl_site.cards.lock), so that re-importing an updated deck updates
  the notes in place, even for a card that moved to another page. Markdown becomes HTML
  (gdl_site.cards.render): math keeps Anki's delimiters ``\\(...\\)`` and ``\\[...\\]`` (Anki ships
  MathJax, so it renders offline), code is highlighted, embeds (``--8<--``) are replaced by the
  code they name, figures travel as media. Tags name the page, book chapter and family
  (gdl_site.cards.tags).
- crowdanki: the same notes as CrowdAnki's deck.json (gdl_site.cards.crowdanki), for git.
- csv: one row per card (key, chapter, id, title, background, question, answer, source),
  Markdown text with embedded sections expanded; no cell starts like a spreadsheet formula.
- flashcards: the seed's text format (``#### Title {#id}``, background, ``:p question``,
  ``??x answer x??``, ``---``), the page source kept as it is, so that
  export -> `gdl-ref cards import` -> export gives the same bytes.

Every format passes through the sanitiser (gdl_site.cards.sanitise): the note fields through
`clean_card_html`, the Markdown of the text formats through `clean_card_markdown`; both leave the
renderer's own output as it is.

Only card pages are exported; a card page with problems stops the export (`CardProblems`), and an
existing output is replaced only when asked (`force`), whole or not at all.
"""

from __future__ import annotations

import csv
import html
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .crowdanki import write_crowdanki
from .embeds import expand
from .fences import classify
from .sanitise import clean_card_html, clean_card_markdown
from .importer import KEYWORD_LINE
from .lock import LOCK_NAME, LockEntry, assign_guids, new_guid, read_lock, write_lock
from .model import Card, Page, Problem
from .notetype import DECK_DESCRIPTION, DECK_ID, DECK_NAME, MODEL_ID, DeckNote, note_model
from .render import readable_markdown, ship_figures, to_html
from .tags import page_tags
from .syntax import DOCS as SITE_DOCS
from .validate import validate_paths

__all__ = ["CardProblems", "DECK_ID", "MODEL_ID", "FORMATS", "build_deck", "export_cards", "load_cards",
           "note_guid", "to_flashcards", "expand_snippet", "csv_cell", "lock_site", "deck_notes"]

FORMATS = ("anki", "csv", "flashcards", "crowdanki")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CardProblems(ValueError):
    """Card pages with problems: nothing was exported. `.problems` lists them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the cards:\n" + "\n".join(map(str, problems)))


def note_guid(card: Card) -> str:
    """The GUID a card gets at its first export (the lock file keeps it after that; see gdl_site.cards.lock)."""
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
    """The text pymdownx.snippets puts in place of `--8<-- "ref"` (see gdl_site.cards.embeds.expand)."""
    return expand(ref, root)


def _source(card: Card) -> str:
    return f"{card.file}:{card.line}"


def deck_notes(pages: list[Page], root: Path, guids: dict[str, str]) -> tuple[list[DeckNote], dict[str, Path]]:
    """The notes of the pages' cards and the media files their figures need (name -> file).

    Raises CardProblems when a figure is a URL, lies outside the repository or does not exist.
    """
    notes: list[DeckNote] = []
    media: dict[str, Path] = {}
    problems: list[Problem] = []
    for page in pages:
        tags = page_tags(page)
        for card in page.cards:
            fields = [card.key, html.escape(card.chapter_title), to_html(card.title, root, inline=True),
                      to_html(card.background, root), to_html(card.question, root, inline=True),
                      to_html(card.answer, root), html.escape(_source(card))]
            fields, files, found = ship_figures(fields, card, root)  # figures' src become the deck's media names
            fields[2:6] = map(clean_card_html, fields[2:6])  # then only what the renderer makes stays
            media.update(files)
            problems += found
            notes.append(DeckNote(guids.get(card.key) or note_guid(card), fields, tags))
    if problems:
        raise CardProblems(sorted(problems))
    return notes, media


def write_anki(notes: list[DeckNote], media: dict[str, Path], out: Path, timestamp: float | None = None) -> None:
    """An .apkg with one note per card, and the figures' files as media."""
    import genanki

    model = note_model()
    deck = genanki.Deck(DECK_ID, DECK_NAME, description=DECK_DESCRIPTION)
    for note in notes:
        deck.add_note(genanki.Note(model=model, fields=note.fields, guid=note.guid, tags=note.tags))
    with tempfile.TemporaryDirectory(prefix="gdl-ref-media-") as folder:
        files = []
        for name, source in sorted(media.items()):   # genanki stores a media file under its base name
            files.append(str(Path(folder) / name))
            shutil.copyfile(source, files[-1])
        genanki.Package(deck, media_files=files).write_to_file(str(out), timestamp=timestamp)


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
                c.key, clean_card_markdown(c.chapter_title), c.id, clean_card_markdown(c.title),
                clean_card_markdown(readable_markdown(c.background, root)), clean_card_markdown(c.question),
                clean_card_markdown(readable_markdown(c.answer, root)), _source(c))])


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
            chunks.append(_escape_keywords(clean_card_markdown(page.intro)) + "\n\n")
        chunks.append("---\n\n")
        for c in page.cards:
            background, answer = (_escape_keywords(clean_card_markdown(t)) for t in (c.background, c.answer))
            chunks.append(f"#### {clean_card_markdown(c.title)} {{#{c.id}}}\n{background}\n\n"
                          f":p {clean_card_markdown(c.question)}\n??x\n{answer}\nx??\n\n---\n\n")
    return "".join(chunks)


def _replace_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Call write(path) in a temporary sibling folder, then rename the result onto out.

    out (a file, or a folder for a CrowdAnki folder) is never half-written; a folder it replaces is
    removed only once the new one is in place.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        new = staging / out.name
        write(new)
        if new.is_dir() and out.is_dir():
            os.replace(out, staging / "previous")
            try:
                os.replace(new, out)
            except OSError:
                os.replace(staging / "previous", out)
                raise
        else:
            os.replace(new, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_out(out: Path, fmt: str, force: bool) -> None:
    """FileExistsError / IsADirectoryError when writing out would overwrite what it must not."""
    folder = fmt == "crowdanki" and out.suffix.lower() != ".zip"
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: pass --force to overwrite it")
    if out.is_dir() and not folder:
        raise IsADirectoryError(f"{out} is a folder: name a file to write")
    if out.is_dir() and not (out / "deck.json").is_file():
        raise IsADirectoryError(f"{out} is a folder but not a CrowdAnki export (no deck.json): name a new folder")
    if out.exists() and folder and not out.is_dir():
        raise FileExistsError(f"{out} is a file: a CrowdAnki export is a folder (or name a .zip file)")


def export_cards(paths: list[Path | str], fmt: str, out: Path | str, root: Path | str | None = None,
                 timestamp: float | None = None, force: bool = False, lock: Path | str | None = None,
                 record: bool = True) -> list[Card]:
    """Write the cards of the pages under paths to out in fmt (anki, csv, flashcards or crowdanki).

    crowdanki writes a folder (deck.json, media/), or a zip archive of it when out ends in .zip.

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
    _check_out(out, fmt, force)
    pages, cards = load_cards(paths, root)
    lock_path = Path(lock) if lock is not None else root / LOCK_NAME
    entries = read_lock(lock_path)
    guids, added, problems = assign_guids(cards, entries, lock_path.name)
    if problems:
        raise CardProblems(problems)
    if fmt in {"anki", "crowdanki"}:
        notes, media = deck_notes(pages, root, guids)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "anki":
        _replace_atomically(out, lambda tmp: write_anki(notes, media, tmp, timestamp))
    elif fmt == "crowdanki":
        _replace_atomically(out, lambda tmp: write_crowdanki(notes, media, tmp))
    elif fmt == "csv":
        _replace_atomically(out, lambda tmp: write_csv(cards, tmp, root))
    else:
        _replace_atomically(out, lambda tmp: tmp.write_text(to_flashcards(pages), encoding="utf-8"))
    if record:
        _record(lock_path, entries, added, cards)
    return cards


def _record(lock_path: Path, entries: dict[str, LockEntry], added: dict[str, LockEntry], cards: list[Card]
            ) -> list[str]:
    """Add to the lock the entries of `added` whose cards are on the site (root/docs); return their ids."""
    site = {c.id for c in cards if Path(c.file).parts[:1] == (SITE_DOCS,)}
    first_published = {i: e for i, e in added.items() if i in site}
    if first_published:
        write_lock(lock_path, {**entries, **first_published})
    return sorted(first_published)


def lock_site(root: Path | str, lock: Path | str | None = None) -> list[str]:
    """Give every card under root/docs that the lock lacks its GUID, in the lock file; return the ids added.

    Raises CardProblems when a card page has problems or a card uses a retired id.
    """
    root = Path(root)
    lock_path = Path(lock) if lock is not None else root / LOCK_NAME
    _, cards = load_cards([root / SITE_DOCS], root)
    entries = read_lock(lock_path)
    _, added, problems = assign_guids(cards, entries, lock_path.name)
    if problems:
        raise CardProblems(problems)
    return _record(lock_path, entries, added, cards)


def build_deck(docs_dir: Path | str, out_path: Path | str) -> int:
    """Write the Anki deck of every card under docs_dir to out_path (for the site build); returns the count."""
    docs_dir = Path(docs_dir)
    return len(export_cards([docs_dir], "anki", out_path, root=docs_dir.resolve().parent))
