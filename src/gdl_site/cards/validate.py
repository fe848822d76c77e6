"""Check chapter pages and report every problem at once, as `file:line: message`.

What is checked (CONTRIBUTING.md lists the rules a contributor follows):

- card structure, from `gdl_site.cards.parse`: a card heading without a stable id, a card
  without a question or an answer, two questions in one card, an empty background, text
  after the answer, a heading level out of place, a question outside a card;
- ids: unique across the whole site, and of the form `lower-case-with-hyphens`;
- math: every `$...$`, `$$...$$` (and `\\(...\\)`, `\\[...\\]`) must convert with
  `gdl_site.cards.mathml.to_mathml`; display math must stand as a paragraph of its own, and a
  stray `$` (e.g. `$x $`, which pymdownx.arithmatex does not take for math) is reported;
- code fences, from `gdl_site.cards.fences`: a fence no test runs, a skip without a reason,
  an embed whose file or section does not exist;
- HTML, from `gdl_site.cards.html_safety`: no element that runs or loads content, no event
  handler, no inline style, no javascript:/vbscript:/data: URL; only the inline allowlist.

Math and fences are checked on every page; structure, ids and HTML on card pages.
"""

from __future__ import annotations

import re
from pathlib import Path

from .embeds import ref_problem, snippet_refs
from .fences import inside_fences
from .html_safety import page_html_problems, rendered_problems
from .mathml import MathError, to_mathml
from .model import Page, Problem
from .parse import HEADING, QUESTION, TITLE, parse_tree
from .syntax import BLOCKS, DOCS, INLINE_DOLLAR, INLINE_ROUND

__all__ = ["check_math", "site_ids", "site_duplicates", "validate_pages", "validate_paths"]

INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
STRAY_DOLLAR = re.compile(r"(?<!\\)\$")


def _short(tex: str, limit: int = 60) -> str:
    tex = " ".join(tex.split())
    return tex if len(tex) <= limit else tex[:limit - 3] + "..."


def _paragraphs(lines: list[str], skip: list[bool], start: int) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph outside fences; headings and questions stand alone."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for k, line in enumerate(lines, start=1):
        if k <= start or skip[k] or not line.strip() or COMMENT.match(line):
            if current:
                out.append((first, current))
            current = []
            continue
        q = QUESTION.match(line)
        if HEADING.match(line) or q:
            if current:
                out.append((first, current))
            current = []
            title = TITLE.match(q.group("rest")) if q else None
            text = (title.group("text") if title else "") if q else HEADING.match(line).group("text")
            out.append((k, [text]))
            continue
        if not current:
            first = k
        current.append(line.strip())
    if current:
        out.append((first, current))
    return [(k, "\n".join(ls)) for k, ls in out]


def check_math(text: str, line: int, file: str) -> list[Problem]:
    """Problems with the math of one paragraph whose first line is `line`."""
    problems: list[Problem] = []
    text = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text)  # code is not math

    def report(offset: int, message: str) -> None:
        problems.append(Problem(file, line + text.count("\n", 0, offset), message))

    def convert(tex: str, display: bool, offset: int, shown: str) -> None:
        try:
            to_mathml(tex, display=display)
        except MathError as err:
            report(offset, f"math will not render: {err}: {shown}")

    stripped = text.strip()
    for block in BLOCKS:
        m = block.match(stripped)
        if m:
            convert(m.group(1), True, text.find(stripped), f"$${_short(m.group(1))}$$")
            return problems
    if "$$" in text:
        report(text.find("$$"), "display math $$...$$ must be a paragraph of its own: "
                                "put a blank line before and after it")
        text = text[:text.find("$$")]  # still check the inline math before it
    rest = list(text)
    for pattern in (INLINE_DOLLAR, INLINE_ROUND):
        for m in pattern.finditer(text):
            convert(m.group(1), False, m.start(), f"${_short(m.group(1))}$")
            rest[m.start():m.end()] = " " * (m.end() - m.start())
    stray = STRAY_DOLLAR.search("".join(rest))
    if stray:
        report(stray.start(), "a $ that starts no formula: inline math is $x$ with no space just inside "
                              "the dollars; write \\$ for a dollar sign")
    return problems


def _page_includes(page: Page, lines: list[str], root: Path) -> list[Problem]:
    """Every snippet line of the page must resolve inside the repository, nested includes too.

    pymdownx.snippets expands snippet lines everywhere, inside code fences as well; the refs of an
    embed fence are reported at the fence by gdl_site.cards.fences, so they are not repeated here.
    """
    in_embed = inside_fences([f for f in page.fences if f.kind == "embed"], len(lines))
    return [Problem(page.file, k, why) for k, ref in snippet_refs(lines)
            if not in_embed[k] and (why := ref_problem(ref, root))]


def _page_math(page: Page, lines: list[str]) -> list[Problem]:
    skip = inside_fences(page.fences, len(lines))
    start = 0
    if lines and lines[0].strip() == "---":  # front matter
        start = next((k for k in range(2, len(lines) + 1) if lines[k - 1].strip() in {"---", "..."}), 0)
    return [p for k, para in _paragraphs(lines, skip, start) for p in check_math(para, k, page.file)]


def validate_pages(pages: list[Page], root: Path | str = ".") -> list[Problem]:
    """Every problem of the pages, sorted by file and line."""
    problems: list[Problem] = []
    seen: dict[str, tuple[str, int]] = {}
    for page in pages:
        problems += page.problems
        problems += [Problem(f.file, f.line, p) for f in page.fences for p in f.problems]
        problems += [Problem(f.file, line, p) for f in page.fences for line, p in f.line_problems]
        problems += _page_math(page, page.text.splitlines())
        problems += _page_includes(page, page.text.splitlines(), Path(root))
        problems += page_html_problems(page) + rendered_problems(page, Path(root))
        for card in page.cards:
            if not card.id:
                continue
            if card.id in seen:
                file, line = seen[card.id]
                problems.append(Problem(card.file, card.line, f'duplicate id "{card.id}": '
                                                              f"also at {file}:{line}; ids are unique across the site"))
            else:
                seen[card.id] = (card.file, card.line)
    return sorted(set(problems))


def validate_paths(paths: list[Path | str], root: Path | str = ".") -> tuple[list[Page], list[Problem]]:
    """Parse and check every .md file named or below the folders named."""
    pages = parse_tree(paths, root)
    return pages, validate_pages(pages, root)


def site_ids(root: Path | str, skip: set[Path] = frozenset()) -> dict[str, str]:
    """ids used by the cards under root/docs, except in the files `skip`, mapped to their `file:line`."""
    root = Path(root)
    docs = root / DOCS
    if not docs.is_dir():
        return {}
    skipped = {p.resolve() for p in skip}
    taken: dict[str, str] = {}
    for page in parse_tree([docs], root):
        if (root / page.file).resolve() in skipped:
            continue
        for card in page.cards:
            if card.id:
                taken.setdefault(card.id, f"{card.file}:{card.line}")
    return taken


def site_duplicates(pages: list[Page], root: Path | str) -> list[Problem]:
    """The cards of `pages` whose id a card elsewhere on the site (root/docs) already has."""
    root = Path(root)
    checked = {(root / p.file).resolve() for p in pages}
    taken = site_ids(root, checked) if any(p.cards for p in pages) else {}
    return sorted(Problem(c.file, c.line, f'duplicate id "{c.id}": also at {taken[c.id]}; ids are unique across the site')
                  for p in pages for c in p.cards if c.id in taken)
