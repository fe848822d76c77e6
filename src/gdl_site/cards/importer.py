"""Import a flashcard text file (the seed's format) as a chapter page, ready to edit.

The flashcard format::

    # Flashcards: <anything>          (optional header; other lines before the first card: intro)
    ---
    #### Title                        (optionally `#### Title {#id}`: the id is kept)
    Background, optionally prefixed "Background context:".
    :p The question?
    ??x
    The answer, any Markdown.
    x??
    ---

Each card becomes ``## Title {#id}``, its background, and ``??? question "..."`` with the
answer indented below it; ids are slugified from titles and made unique (also against the
ids already on the site). What the importer changes or cannot map is reported, never dropped:

- inline math is tidied the way pymdownx.arithmatex needs it (``$D $`` -> ``$D$``, a space
  between a word and a formula), display math is set apart as its own paragraph, and
  ``\\arg\\max`` becomes ``\\argmax``;
- code in another language (java, ...) stays on the page in its own fence with a visible note;
- shell commands are marked shown-not-run with a reason (the flashcards' commands need a
  network, Docker or a cloud account); Python fences stay runnable, so the tests try them.

A card whose title carries its id (``#### Title {#id}``, as `gdl-ref cards export` writes it)
comes from the site: its text is kept as it is, so that export -> import -> export is stable.
The generated page is then checked like any page, and its problems are reported too.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .fences import classify, inside_fences
from .parse import parse_text
from .validate import validate_pages

__all__ = ["ImportFailed", "ImportResult", "Note", "import_flashcards", "slugify"]

FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})(?P<info>.*)$")
TITLE = re.compile(r"^####\s+(?P<title>.*?)\s*(?:\{\s*#(?P<id>[^}\s]+)\s*\})?\s*$")
BACKGROUND = re.compile(r"^Background context(?::\s*|\s+explaining\s+(?:that\s+)?)", re.I)
HEADER = re.compile(r"^#\s+(?:Flashcards:\s*)?(?P<title>.*?)\s*$")
SHELL = {"bash", "sh", "shell", "zsh"}
PYTHON = {"python", "py", "python3"}
SHELL_REASON = ("*Not run here: a shell command imported from the flashcards; it may need a network, "
                "Docker or a cloud account.*")
SHELL_SKIP = "a shell command imported from the flashcards"
MARKER = re.compile(r"^\s*<!--[-\s]*pytest[-.].*-->\s*$")
LIST_ITEM = re.compile(r"^(\d+[.)]|[-*+])\s+\S")
QUESTION_LINE = re.compile(r"^:p(\s|$)")
# Lines that are syntax in the flashcard format; `gdl-ref cards export` escapes them in card text with "\\".
KEYWORD_LINE = re.compile(r"^(:p(\s|$)|\?\?x|---\s*$|####\s|.*x\?\?\s*$)")
DOLLAR = re.compile(r"(?<!\\)\$")


class ImportFailed(ValueError):
    """The file holds no flashcards, or is in another format; the message says which."""


@dataclass
class Note:
    """Something the importer changed or could not map: line in the source (0: the page), message."""

    line: int
    message: str
    page_line: bool = False   # True: `line` is a line of the generated page

    def render(self, source: str, page: str) -> str:
        return f"{page if self.page_line else source}:{self.line}: {self.message}"


@dataclass
class ImportResult:
    page: str                                       # the chapter page's Markdown
    cards: int
    notes: list[Note] = field(default_factory=list)


@dataclass
class _Raw:
    title: str
    id: str | None
    line: int
    background: list[tuple[int, str]] = field(default_factory=list)
    question: list[tuple[int, str]] = field(default_factory=list)
    answer: list[tuple[int, str]] = field(default_factory=list)
    closed: bool = False      # saw x??


def slugify(title: str) -> str:
    """`Maximum Likelihood Estimation (MLE)` -> `maximum-likelihood-estimation-mle`."""
    ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    return slug or "card"


def _split(lines: list[str]) -> tuple[str, list[tuple[int, str]], list[_Raw], list[Note]]:
    """Header title, intro lines, raw cards, notes."""
    title = ""
    intro: list[tuple[int, str]] = []
    cards: list[_Raw] = []
    notes: list[Note] = []
    card: _Raw | None = None
    part = "intro"            # intro | background | question | answer | after
    fences = [f for f in classify("\n".join(lines)) if f.kind != "marker"]
    inside = inside_fences(fences, len(lines))  # a fence opened outside a question is kept whole
    orphan: list[tuple[int, str]] = []

    def target() -> list[tuple[int, str]]:
        if card is None:
            return intro if part == "intro" else orphan
        return {"background": card.background, "question": card.question, "answer": card.answer,
                "after": card.answer}[part]

    for k, line in enumerate(lines, start=1):
        stripped = line.strip()
        if inside[k] and part != "question":
            target().append((k, line))
            continue
        if stripped.startswith("\\") and KEYWORD_LINE.match(stripped.lstrip("\\")):
            target().append((k, line.replace("\\", "", 1)))  # an escaped keyword line: text, not syntax
            continue
        if part in {"background", "answer"} and stripped == "---" and not _next_is_title(lines, k):
            target().append((k, line))  # a rule inside the card, not a separator
            continue
        if stripped == "---":
            if part == "answer":
                notes.append(Note(card.line, f'card "{card.title}": its answer has no closing x??'))
            part = "after" if card else "orphan"
            card = None
            continue
        t = TITLE.match(line)
        if t and part != "answer":
            card = _Raw(t.group("title"), t.group("id"), k)
            cards.append(card)
            part = "background"
            continue
        if card is None and part == "intro" and not title and HEADER.match(line) and not line.startswith("##"):
            title = HEADER.match(line).group("title")
            continue
        if card is not None and part == "background" and QUESTION_LINE.match(stripped):
            part = "question"
            card.question.append((k, stripped[2:].strip()))
            continue
        if card is not None and part in {"background", "question"} and stripped.startswith("??x"):
            part = "answer"
            rest = stripped[3:].strip()
            if rest:
                card.answer.append((k, rest))
            if stripped.endswith("x??") and len(stripped) > 3:
                card.answer[-1] = (k, rest[:-3].rstrip())
                card.closed, part = True, "after"
            continue
        if part == "answer" and stripped.endswith("x??"):
            before = line.rstrip()[:-3].rstrip()
            if before.strip():
                card.answer.append((k, before))
            card.closed, part = True, "after"
            continue
        if part == "after" and card is not None and stripped:
            notes.append(Note(k, f'text after x?? in card "{card.title}": kept at the end of its answer'))
        target().append((k, line))
    if any(f.end_line > len(lines) for f in fences):
        notes.append(Note(len(lines), "a code fence is never closed: closed at the end of the file"))
    if card is not None and part == "answer":
        notes.append(Note(card.line, f'card "{card.title}": its answer has no closing x??'))
    if any(s.strip() for _, s in orphan):
        first = next(k for k, s in orphan if s.strip())
        notes.append(Note(first, "text between --- separators that is not a card (no #### title): "
                                 "kept in an ordinary section at the end of the page"))
        cards.append(_Raw("", None, first, background=orphan))
    return title, intro, cards, notes


def _next_is_title(lines: list[str], k: int) -> bool:
    """Whether the first non-blank line after line k (1-based) is a #### title (or the file ends)."""
    for line in lines[k:]:
        if line.strip():
            return bool(TITLE.match(line))
    return True


def _tidy_inline(line: str, k: int, notes: list[Note]) -> str:
    """`$D $` -> `$D$`, `word$x$` -> `word $x$`, `\\arg\\max` -> `\\argmax`, outside inline code."""
    line = re.sub(r"\\arg\s*\\(max|min)(?![A-Za-z])", r"\\arg\1", line)
    if line.strip().startswith("$$") or "$$" in line:
        if not (line.strip().startswith("$$") and line.strip().endswith("$$")) and line.strip() != "$$":
            notes.append(Note(k, "display math $$...$$ inside a line of text: left as it is; "
                                 "make it a paragraph of its own or inline math $...$"))
        return line
    pieces = re.split(r"(`+[^`]*`+)", line)
    out: list[str] = []
    for piece in pieces:
        if piece.startswith("`"):
            out.append(piece)
            continue
        spots = [m.start() for m in DOLLAR.finditer(piece)]
        if len(spots) % 2:
            notes.append(Note(k, "an odd number of $ on this line: math left as it is"))
            out.append(piece)
            continue
        built, last = "", 0
        for a, b in zip(spots[::2], spots[1::2]):
            before = piece[last:a]
            tex = piece[a + 1:b].strip()
            if before and (before[-1].isalnum()):
                before += " "
            built += before + f"${tex}$"
            last = b + 1
            if last < len(piece) and piece[last].isalnum():
                built += " "
        out.append(built + piece[last:])
    return "".join(out)


def _tidy(part: list[tuple[int, str]], notes: list[Note], title: str) -> list[str]:
    """Normalise one part's lines: math, display blocks apart, code fences mapped."""
    out: list[str] = []
    lines = [line.rstrip() for _, line in part]
    fences = [f for f in classify("\n".join(lines)) if f.kind != "marker"]
    inside, openings = inside_fences(fences, len(lines)), {f.line for f in fences}
    in_display = False
    for i, ((k, _), line) in enumerate(zip(part, lines), start=1):
        if i in openings:
            out += _map_fence(FENCE.match(line), k, out, notes, title)
            continue
        if inside[i]:
            out.append(line)
            continue
        stripped = line.strip()
        if stripped == "$$":  # a display block over several lines
            if not in_display and out and out[-1].strip():
                out.append("")
            out.append(line)
            in_display = not in_display
            if not in_display:
                out.append("")
            continue
        if in_display:
            out.append(line)
            continue
        line = _tidy_inline(line, k, notes)
        if LIST_ITEM.match(line) and out and out[-1].strip() and not LIST_ITEM.match(out[-1]) \
                and not out[-1].startswith((" ", "\t")):
            out.append("")  # Python-Markdown starts a list only after a blank line
        if line.strip().startswith("$$") and line.strip().endswith("$$") and len(line.strip()) > 4:
            if out and out[-1].strip():
                out.append("")
            out += [line, ""]
            continue
        out.append(line)
    # Collapse runs of blank lines the display handling may have made.
    tidy: list[str] = []
    for line in out:
        if not line.strip() and tidy and not tidy[-1].strip():
            continue
        tidy.append(line)
    while tidy and not tidy[-1].strip():
        tidy.pop()
    while tidy and not tidy[0].strip():
        tidy.pop(0)
    return tidy


def _verbatim(part: list[tuple[int, str]]) -> list[str]:
    """A part's lines as they are, without trailing spaces and surrounding blank lines."""
    lines = [line.rstrip() for _, line in part]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _map_fence(m: re.Match, k: int, out: list[str], notes: list[Note], title: str) -> list[str]:
    """The lines that open a fence on the page: the fence, after a note or skip marker where needed."""
    indent, ticks, info = m.group("indent"), m.group("ticks"), m.group("info").strip()
    lang = info.split()[0].lower() if info else ""
    previous = next((ln for ln in reversed(out) if ln.strip()), "")
    lead = [""] if out and out[-1].strip() else []
    if lang in PYTHON and info != lang:  # attributes, e.g. an embed's title="src/gdl_ref/x.py": as it is
        return [f"{indent}{ticks}{info}"]
    if lang in PYTHON:
        if MARKER.match(previous):
            return [f"{indent}{ticks}python"]
        if info != "python":
            notes.append(Note(k, f'card "{title}": ```{info} fence made ```python so that the tests run it'))
        notes.append(Note(k, f'card "{title}": Python code kept runnable: the tests run it, so make it complete '
                             "and quick, or mark it skipped with a reason"))
        return [f"{indent}{ticks}python"]
    if lang in SHELL:
        if MARKER.match(previous):
            return [f"{indent}{ticks}{info}"]
        notes.append(Note(k, f'card "{title}": {lang} command marked shown-not-run, with a generic reason: '
                             "check it, or make the command runnable"))
        return lead + [indent + SHELL_REASON, "", f'{indent}<!--pytest.mark.skip(reason="{SHELL_SKIP}")-->', "",
                       f"{indent}{ticks}{'bash' if lang in {'shell', 'zsh'} else lang}"]
    if not lang or lang in {"text", "console", "yaml", "toml", "json", "markdown"}:
        return [f"{indent}{ticks}{info}"]
    note = (f"*Imported {lang} code from the flashcards: not Python, so no test runs it; "
            "replace it with PyTorch code or remove it.*")
    if previous.strip() != note:
        notes.append(Note(k, f'card "{title}": {lang} code kept on the page with a note; '
                             "replace it with Python or remove it"))
        return lead + [indent + note, "", f"{indent}{ticks}{info}"]
    return [f"{indent}{ticks}{info}"]


def import_flashcards(text: str, chapter: str | None = None, taken: dict[str, str] | None = None) -> ImportResult:
    """The chapter page for a flashcard text, and the notes of what was changed or not mapped.

    chapter: the page title (default: the file's `# Flashcards: ...` header). taken maps ids
    already used on the site to where (`file:line`); imported ids avoid them.
    Raises ImportFailed when the text holds no flashcards or is a chapter page already.
    """
    lines = text.splitlines()
    if any(re.match(r'^\?\?\?\+?\s*question\b', ln) for ln in lines):
        raise ImportFailed("this is a chapter page already (it has ??? question); "
                           "import reads the flashcard text format: #### Title, background, "
                           ":p question, ??x answer x??, separated by ---")
    title, intro, raws, notes = _split(lines)
    if not any(r.title for r in raws):
        raise ImportFailed("no flashcards found: expected cards as '#### Title', background, "
                           "':p question', '??x' answer 'x??', separated by '---'")
    chapter = chapter or title
    if not chapter:
        raise ImportFailed("no chapter name: pass --chapter NAME (the file has no '# Flashcards: ...' header)")
    taken = dict(taken or {})
    page = [f"# {chapter}", ""]
    exported = any(r.id for r in raws)   # written by `gdl-ref cards export`: site text, kept as it is
    intro_lines = _verbatim(intro) if exported else _tidy(intro, notes, "intro")
    if intro_lines:
        page += intro_lines + [""]
    count = 0
    for raw in raws:
        if not raw.title:  # text that is not a card
            page += ["## Not mapped from the flashcards", ""] + _tidy(raw.background, notes, "") + [""]
            continue
        count += 1
        card_id = raw.id or slugify(raw.title)
        if raw.id and raw.id in taken:  # an id the file gives is kept: it is what links and Anki notes know
            notes.append(Note(raw.line, f'id "{raw.id}" is also used at {taken[raw.id]}: kept, since the file '
                                        "gives it; two pages cannot both keep it"))
        elif card_id in taken:
            new = next(f"{card_id}-{n}" for n in range(2, 10_000) if f"{card_id}-{n}" not in taken)
            notes.append(Note(raw.line, f'id "{card_id}" is taken ({taken[card_id]}): this card is {{#{new}}}'))
            card_id = new
        taken[card_id] = f"line {raw.line} of this file"
        background = raw.background
        if background:
            k0, first = next(((k, s) for k, s in background if s.strip()), background[0])
            idx = background.index((k0, first))
            cleaned = BACKGROUND.sub("", first.strip())
            if cleaned != first.strip():
                cleaned = cleaned[:1].upper() + cleaned[1:]
                background = background[:idx] + [(k0, cleaned)] + background[idx + 1:]
        page += [f"## {raw.title} {{#{card_id}}}", ""]
        tidy = _verbatim if raw.id else (lambda part: _tidy(part, notes, raw.title))
        body = tidy(background)
        page += body + ([""] if body else [])
        question = " ".join(s.strip() for _, s in raw.question if s.strip())
        if not raw.question:
            notes.append(Note(raw.line, f'card "{raw.title}" has no :p question'))
        else:
            page += [f'??? question "{question}"', ""]
            answer = tidy(raw.answer)
            if not answer:
                notes.append(Note(raw.line, f'card "{raw.title}" has no answer between ??x and x??'))
            page += [("    " + ln) if ln.strip() else "" for ln in answer] + ([""] if answer else [])
    markdown = "\n".join(page).rstrip("\n") + "\n"
    checked = parse_text(markdown, "<page>")
    notes += [Note(p.line, p.message, page_line=True) for p in validate_pages([checked])]
    return ImportResult(markdown, count, notes)
