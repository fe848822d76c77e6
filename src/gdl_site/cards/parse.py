"""Read chapter pages (docs/**/*.md) into Card records.

A page is a card chapter when its front matter says ``cards: true``, or, without that key,
when it holds a ``??? question`` line at the start of a line; ``cards: false`` opts a page out
(the home page shows a sample question). On a card chapter:

- ``# Title`` (once, first) names the chapter; front matter ``title:`` overrides it.
- ``## Title {#stable-id}`` starts a card. A ``##`` section with neither an id nor a
  question is an ordinary section (introduction, references): not a card, not exported.
- the card's background is the text between its heading and its question;
- ``??? question "The question?"`` (or ``???+``) asks the one question; the answer is the
  body indented four spaces below it. Nothing may follow the answer inside the card.

The parser records what it cannot fit into a card as `Problem`s (file, line, message);
`gdl_site.cards.validate` adds the site-wide checks (duplicate ids, math, code fences).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .fences import Fence, classify, inside_fences, markdown_files
from .model import Card, CodeBlock, Page, Problem

__all__ = ["parse_page", "parse_text", "parse_tree", "is_card_page", "HEADING", "QUESTION", "ID_RULE"]

HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)[ \t]*#*[ \t]*$")
ATTRS = re.compile(r"^(?P<title>.*?)[ \t]*\{:?[ \t]*(?P<attrs>[^}]*)\}[ \t]*$")
QUESTION = re.compile(r'^(?P<indent>[ \t]*)(?P<mark>\?\?\?\+?|!!!)[ \t]*question\b(?P<rest>.*)$')
TITLE = re.compile(r'^[ \t]+"(?P<text>.*)"[ \t]*$')
ID_RULE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TEMPLATE_ID = "your-card-id"   # the id in src/gdl_site/templates/card.md
ID_HINT = "lower-case letters, digits and single hyphens, e.g. {#maximum-likelihood}"


def _front_matter(lines: list[str]) -> tuple[dict, int, str | None]:
    """(front matter dict, number of lines it takes, problem or None)."""
    if not lines or lines[0].strip() != "---":
        return {}, 0, None
    for end in range(1, len(lines)):
        if lines[end].strip() in {"---", "..."}:
            try:
                data = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                return {}, end + 1, f"front matter is not valid YAML: {str(exc).splitlines()[0]}"
            if not isinstance(data, dict):
                return {}, end + 1, "front matter is not a mapping of keys to values"
            return data, end + 1, None
    return {}, 0, "front matter opened with --- is never closed"


def is_card_page(text: str, fences: list[Fence] | None = None) -> bool:
    """Whether a page declares cards (front matter `cards:`, else a `??? question` line outside code)."""
    lines = text.splitlines()
    meta, _, _ = _front_matter(lines)
    if isinstance(meta.get("cards"), bool):
        return meta["cards"]
    inside = inside_fences(classify(text) if fences is None else fences, len(lines))
    return any((m := QUESTION.match(line)) and not m.group("indent") and m.group("mark") != "!!!"
               and not inside[k] for k, line in enumerate(lines, start=1))


def _strip_block(lines: list[str], start: int) -> tuple[str, int]:
    """Join lines with leading/trailing blank lines removed: (text, 1-based line of the first kept)."""
    lo, hi = 0, len(lines)
    while lo < hi and not lines[lo].strip():
        lo += 1
    while hi > lo and not lines[hi - 1].strip():
        hi -= 1
    kept = [ln.rstrip() for ln in lines[lo:hi]]
    return "\n".join(kept), (start + lo if kept else 0)


def _dedent4(line: str) -> str:
    if line.startswith("\t"):
        return line[1:]
    return line[min(4, len(line) - len(line.lstrip(" "))):]


def _heading_id(text: str) -> tuple[str, str | None]:
    """Split `Title {#id .class}` into (title, id or None)."""
    m = ATTRS.match(text)
    if not m:
        return text.strip(), None
    tokens = m.group("attrs").split()
    first = next((k for k, a in enumerate(tokens) if a.startswith("#")), None)
    if first is None:
        return m.group("title").strip(), None
    # Words after the id that are neither .class nor key=value belong to it: `{#probe good}` is the id "probe good".
    words = [tokens[first][1:]]
    for a in tokens[first + 1:]:
        if a.startswith((".", "#")) or "=" in a:
            break
        words.append(a)
    return m.group("title").strip(), " ".join(words)


def parse_text(text: str, file: str = "<page>", root: Path | str = ".") -> Page:
    """Parse one page's Markdown text. `file` names it in problems; root resolves embeds."""
    lines = text.splitlines()
    n = len(lines)
    meta, body_start, fm_problem = _front_matter(lines)
    chapter = Path(file).stem
    fences = classify(text, file, root)
    inside = inside_fences(fences, n)
    page = Page(file=file, chapter=chapter, title=str(meta.get("title") or ""),
                is_card_page=is_card_page(text, fences), fences=fences, text=text)
    tags = meta.get("tags") or []
    page.tags = [str(t) for t in tags] if isinstance(tags, list) else [str(tags)]
    if fm_problem:
        page.problems.append(Problem(file, 1, fm_problem))

    def problem(line: int, message: str) -> None:
        page.problems.append(Problem(file, line, message))

    # Headings and questions outside code fences, 1-based line numbers.
    headings: list[tuple[int, int, str]] = []     # (line, level, text)
    questions: list[int] = []
    for k in range(body_start + 1, n + 1):
        if inside[k]:
            continue
        line = lines[k - 1]
        h = HEADING.match(line)
        if h:
            headings.append((k, len(h.group("hashes")), h.group("text")))
            continue
        q = QUESTION.match(line)
        if q:
            questions.append(k)
    if not page.is_card_page:
        h1 = next((t for _, lvl, t in headings if lvl == 1), "")
        page.title = page.title or _heading_id(h1)[0] or chapter
        return page

    # Page title and heading levels.
    h1s = [(k, t) for k, lvl, t in headings if lvl == 1]
    if h1s:
        page.title = page.title or _heading_id(h1s[0][1])[0]
        for k, _ in h1s[1:]:
            problem(k, "a second # heading: a page has one title; a card heading is ## Title {#id}")
    page.title = page.title or chapter
    first_h2 = next((k for k, lvl, _ in headings if lvl == 2), n + 1)
    if h1s and h1s[0][0] > first_h2:
        problem(h1s[0][0], "heading level out of place: the # title must come before the first ## card")
    prev_level = 1 if h1s or meta.get("title") else 0
    for k, lvl, t in headings:
        if lvl > 1 and prev_level and lvl > prev_level + 1:
            problem(k, f"heading level out of place: {'#' * lvl} follows {'#' * prev_level} "
                       f"(a card heading is ##, a page has no level between)")
        if lvl != 2 and _heading_id(t)[1] is not None and lvl > 1:
            problem(k, f"a card heading is ## Title {{#id}}, found {'#' * lvl}")
        prev_level = lvl

    # Sections: each ## heading up to the next # or ## heading.
    bounds = [k for k, lvl, _ in headings if lvl <= 2] + [n + 1]
    h2s = [(k, t) for k, lvl, t in headings if lvl == 2]
    intro_end = h2s[0][0] if h2s else n + 1
    intro_from = h1s[0][0] if h1s and h1s[0][0] < intro_end else body_start
    page.intro, _ = _strip_block(lines[intro_from:intro_end - 1], intro_from + 1)
    for q in questions:
        if q < intro_end:
            problem(q, "a question outside a card: put it under a ## Title {#id} heading")
    for head, text_ in h2s:
        end = next(b for b in bounds if b > head)          # first line after the section
        title, card_id = _heading_id(text_)
        qs = [q for q in questions if head < q < end]
        if card_id is None and not qs:
            continue                                       # an ordinary section
        card = Card(chapter=chapter, id=card_id or "", title=title, background="", question="",
                    answer="", file=file, line=head, chapter_title=page.title,
                    tags=[chapter] + [t for t in page.tags if t != chapter])
        _fill_card(card, lines, head, end, qs, problem, inside)
        if card_id is None:
            problem(head, f"card heading has no stable id: write ## {title} {{#some-id}} ({ID_HINT})")
        elif " " in card_id:
            problem(head, f'card id "{card_id}" has a space: an id is one word of {ID_HINT}')
        elif not ID_RULE.match(card_id):
            problem(head, f'card id "{card_id}" is not {ID_HINT}')
        elif card_id == TEMPLATE_ID:
            problem(head, f'card id "{card_id}" is the template\'s: give the card an id of its own')
        card.code = [CodeBlock(f.kind, f.info, f.lang, f.code, f.line, list(f.refs))
                     for f in fences if head < f.line < end and f.kind != "marker"]
        page.cards.append(card)
    return page


def _fill_card(card: Card, lines: list[str], head: int, end: int, qs: list[int], problem,
               inside: list[bool]) -> None:
    """Background, question and answer of the card whose heading is at `head` (section ends before `end`)."""
    section = range(head + 1, end)
    for k in section:
        h = HEADING.match(lines[k - 1])
        if h and len(h.group("hashes")) > 2 and (not qs or k < qs[0]):
            problem(k, f"heading level out of place: a {h.group('hashes')} heading inside a card; "
                       "a card has one ## heading (use **bold** text, or split the card)")
    if not qs:
        card.background, card.background_line = _strip_block(lines[head:end - 1], head + 1)
        problem(head, f'card "{card.title}" has no question: add ??? question "...?" '
                      "with the answer indented four spaces below it")
        return
    q = qs[0]
    for extra in qs[1:]:
        problem(extra, f"a second question in one card (the first is at line {q}): split it into two cards")
    card.question_line = q
    card.background, card.background_line = _strip_block(lines[head:q - 1], head + 1)
    if not card.background:
        problem(head, f'card "{card.title}" has an empty background: write a paragraph between the heading '
                      "and the question")
    m = QUESTION.match(lines[q - 1])
    if m.group("indent"):
        problem(q, "the question is indented: ??? question must start at the beginning of a line")
    if m.group("mark") == "!!!":
        problem(q, '!!! question shows the answer: write ??? question "..." so that it folds')
    title = TITLE.match(m.group("rest"))
    card.question = title.group("text").strip() if title else ""
    if not card.question:
        problem(q, 'the question has no text: write ??? question "The question?"')
    # The answer: blank lines and lines indented four spaces (or a tab) after the question.
    k = q + 1
    while k < end and (not lines[k - 1].strip() or lines[k - 1].startswith(("    ", "\t"))):
        k += 1
    card.answer, card.answer_line = _strip_block([_dedent4(ln) for ln in lines[q:k - 1]], q + 1)
    for j in range(q + 1, k):
        if not inside[j] and HEADING.match(_dedent4(lines[j - 1])) and lines[j - 1].startswith(("    ", "\t")):
            problem(j, "heading level out of place: a heading inside the answer; "
                       "use **bold** text, or split the card")
    if not card.answer:
        problem(q, "the question has no answer: indent the answer four spaces below ??? question")
    stray = next((j for j in range(k, end) if lines[j - 1].strip() and j not in qs), None)
    if stray is not None and not (qs[1:] and stray > qs[1]):
        problem(stray, "text after the answer belongs to no part of the card: indent it four spaces "
                       "into the answer, or move it above the question")


def parse_page(path: Path | str, root: Path | str = ".") -> Page:
    """Parse a page file; it is named relative to root in problems when it lies below root."""
    path = Path(path)
    full = path.resolve()
    root_path = Path(root).resolve()
    name = str(full.relative_to(root_path)) if full.is_relative_to(root_path) else str(path)
    try:
        text = full.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        why = (f"not UTF-8 text: {exc.reason} at byte {exc.start}" if isinstance(exc, UnicodeDecodeError)
               else f"cannot be read: {exc.strerror or exc}")
        page = Page(file=name, chapter=path.stem, title=path.stem, is_card_page=False, readable=False)
        page.problems.append(Problem(name, 1, why))
        return page
    return parse_text(text, name, root)


def parse_tree(paths: list[Path | str], root: Path | str = ".") -> list[Page]:
    """Parse every .md file named or below the folders named (card pages and others)."""
    return [parse_page(p, root) for p in markdown_files(paths)]
