"""Active HTML in a card page: found in the page's Markdown source, reported at `file:line`.

Python-Markdown passes raw HTML through unchanged, so a page could carry a script into the site
and, through the export, into Anki's reviewer, which runs it. The check refuses:

- elements that run or load content (`ACTIVE`), and hand-written ``<svg>`` and ``<math>``
  (the build makes MathML from ``$...$``; that is not in the source, so it is not checked);
- any other element outside `ALLOWED`, the small set of harmless inline HTML a card may hold;
- event-handler attributes (``on*``) and inline ``style``;
- ``javascript:``, ``vbscript:`` and ``data:`` URLs in the attributes of `URL_ATTRS`, compared
  after entity decoding (done by the parser), case folding and removal of whitespace and
  control characters (which browsers drop from a URL).

The source is read by `html.parser.HTMLParser` (a real tokenizer, so quotes, case, entities and
unquoted values are seen as a browser sees them) after code fences, code spans, math and front
matter are blanked out: ``<script>`` between backticks is text. Comments are checked as well, in
case a browser ends one earlier than the parser does. As a backstop, `rendered_problems` reads the
HTML a card renders to (a raw HTML block keeps backticks as they are).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from .embeds import EmbedOutside, snippet_refs
from .fences import classify
from .model import Page, Problem
from .render import to_html
from .syntax import INLINE_DOLLAR, INLINE_ROUND

__all__ = ["ACTIVE", "ALLOWED", "URL_ATTRS", "BAD_SCHEMES", "dangerous_scheme", "html_problems", "markdown_html", "page_html_problems",
           "rendered_problems"]

ACTIVE = frozenset({"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
                    "button", "select", "textarea", "base", "link", "meta", "style", "svg", "math", "template",
                    "noscript", "portal"})
# Harmless inline HTML a card may write by hand (CONTRIBUTING.md lists it).
ALLOWED = frozenset({"a", "abbr", "b", "br", "cite", "code", "dd", "del", "details", "dfn", "dl", "dt", "em",
                     "figcaption", "figure", "hr", "i", "img", "ins", "kbd", "mark", "q", "s", "samp", "small",
                     "span", "strong", "sub", "summary", "sup", "u", "var", "wbr"})
URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "srcset", "poster", "background",
                       "cite", "data", "ping"})
BAD_SCHEMES = ("javascript:", "vbscript:", "data:")
INSTEAD = {
    "svg": "put the figure in a file beside the page and show it with ![what it shows](figure.svg)",
    "math": "write the formula as $...$ (the build makes the MathML)",
    "style": "the site's stylesheet styles cards; use Markdown emphasis",
    "script": "show code in a fenced block or between `backticks`",
}
DEFAULT_INSTEAD = "show it as code between `backticks`, or describe it in words"

# What the Markdown renderer does not read as HTML, to be blanked out before parsing.
CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
AUTOLINK = re.compile(r"<(?:https?|ftp)://[^<>\s]*>|<(?:mailto:)?[^<>\s!@]+@[^<>\s@]+>", re.I)
DISPLAY_MATH = re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$|\\\[.+?\\\]", re.S)
RAW_BLOCK = re.compile(r"^\s*</?[A-Za-z]")             # a line that may open a raw HTML block
URL_DROPPED = re.compile(r"[\x00-\x20\x7f]+")   # whitespace and control characters a browser drops


def _blank(text: str, start: int, end: int) -> str:
    """text with [start, end) replaced by spaces, newlines kept (so lines keep their numbers)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def _blank_all(text: str, pattern: re.Pattern) -> str:
    for m in reversed(list(pattern.finditer(text))):
        text = _blank(text, m.start(), m.end())
    return text


def dangerous_scheme(value: str) -> str | None:
    """The dangerous scheme a URL attribute's value starts with (or, for srcset, holds), else None."""
    folded = URL_DROPPED.sub("", value).lower()
    return next((s for s in BAD_SCHEMES if folded.startswith(s) or f",{s}" in folded), None)


class _Checker(HTMLParser):
    """Collects (line, message) for each piece of active HTML; line is counted from `first`."""

    def __init__(self, first: int = 1, allowed: frozenset[str] | None = ALLOWED, retry: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.first = first
        self.retry = retry
        self.foreign = 0   # depth inside a hand-written <svg> or <math> (reported once, not each child)
        self.allowed = allowed
        self.found: list[tuple[int, str]] = []

    def _line(self) -> int:
        return self.first + self.getpos()[0] - 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self._line()
        if tag in ACTIVE:
            hand = " written by hand" if tag in {"svg", "math"} else ""
            self.found.append((line, f"active HTML <{tag}>{hand}: a card may not hold it; "
                                     f"{INSTEAD.get(tag, DEFAULT_INSTEAD)}"))
        elif self.allowed is not None and tag not in self.allowed and not self.foreign:
            self.found.append((line, f"HTML element <{tag}> is not among those a card may hold (CONTRIBUTING.md, "
                                     "\"HTML in a card\"): write Markdown instead"))
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append((line, f"event-handler attribute {name}= on <{tag}> runs code: remove it"))
            elif name == "style":
                self.found.append((line, f"inline style= on <{tag}>: remove it; the site's stylesheet styles "
                                         "cards (use Markdown emphasis)"))
            elif name in URL_ATTRS and value and (scheme := dangerous_scheme(value)):
                self.found.append((line, f'<{tag} {name}="{scheme}...">: a {scheme} URL runs or embeds content: '
                                         "link to an https:// page, or show a file of the repository by its "
                                         "relative path"))

        self.foreign += tag in {"svg", "math"}

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.foreign -= tag in {"svg", "math"}

    def handle_endtag(self, tag: str) -> None:
        self.foreign = max(0, self.foreign - (tag in {"svg", "math"}))

    def handle_comment(self, data: str) -> None:
        """A comment's inside, checked too: browsers end some comments earlier than this parser."""
        self.found += html_problems(data, self._line(), self.allowed)

    def unknown_decl(self, data: str) -> None:
        self.handle_comment(data)

    def close(self) -> None:
        """An unfinished tag at the end (``<script src=x`` with no ``>``) is read once more, closed."""
        rest = self.rawdata
        if self.retry and not self.cdata_elem and len(rest) > 1 and rest[0] == "<" and rest[1].isalpha():
            inner = _Checker(self._line(), self.allowed, retry=False)
            inner.feed(rest + ">")
            inner.close()
            self.found += inner.found
        super().close()


def html_problems(text: str, first: int = 1, allowed: frozenset[str] | None = ALLOWED) -> list[tuple[int, str]]:
    """(line, message) for each piece of active HTML in `text` (HTML, or Markdown already blanked).

    `first` is the line number of text's first line; `allowed` None accepts any element not in ACTIVE.
    """
    checker = _Checker(first, allowed)
    checker.feed(text)
    checker.close()
    return checker.found


def markdown_html(text: str, blanked_lines: set[int]) -> str:
    """The page text with what Markdown does not read as HTML blanked out: the given lines
    (front matter, code fences), code spans, autolinks and math."""

    lines = text.split("\n")
    lines = [" " * len(ln) if k in blanked_lines else ln for k, ln in enumerate(lines, start=1)]
    text = "\n".join(lines)
    text = _blank_all(text, re.compile(r"\\\\|\\`"))    # escaped backslashes and backticks start no code
    blocks = re.split(r"(\n[ \t]*\n)", text)          # a code span ends at a blank line
    text = "".join(_blank_all(b, CODE_SPAN) for b in blocks)
    for pattern in (AUTOLINK, DISPLAY_MATH, INLINE_DOLLAR, INLINE_ROUND):
        text = _blank_all(text, pattern)
    return text


def page_html_problems(page: Page) -> list[Problem]:
    """Active HTML anywhere in a card page's Markdown (intro, headings, backgrounds, questions, answers)."""
    if not page.is_card_page or not page.text:
        return []
    lines = page.text.split("\n")
    skipped: set[int] = set()
    if lines and lines[0].strip() == "---":
        end = next((k for k in range(2, len(lines) + 1) if lines[k - 1].strip() in {"---", "..."}), 0)
        skipped |= set(range(1, end + 1))
    for f in page.fences:
        if f.kind != "marker":
            skipped |= set(range(f.line, f.end_line + 1))
    return [Problem(page.file, k, why) for k, why in html_problems(markdown_html(page.text, skipped))]


def _needs_render(text: str) -> bool:
    """Whether a line outside code fences may open a raw HTML block or include another file."""

    fenced = {k for f in classify(text) for k in range(f.line, f.end_line + 1)}
    lines = text.splitlines()
    return (any(RAW_BLOCK.match(ln) for k, ln in enumerate(lines, 1) if k not in fenced)
            or any(k not in fenced for k, _ in snippet_refs(lines)))


def rendered_problems(page: Page, root: Path) -> list[Problem]:
    """Active HTML in the HTML each card's parts render to, at the part's first line.

    A backstop for what the source check cannot see: inside a raw HTML block (``<details>`` ...
    ``</details>``) Markdown leaves backticks alone, so ``<script>`` between them still runs; and
    the text a ``--8<--`` line includes from another file.
    Cards the source check already refused are not rendered.
    """

    problems: list[Problem] = []
    starts = [c.line for c in page.cards] + [len(page.text.splitlines()) + 1]
    refused = {p.line for p in page_html_problems(page)}
    for card, end in zip(page.cards, starts[1:]):
        if any(card.line <= k < end for k in refused):
            continue
        parts = [(card.title, card.line, True), (card.background, card.background_line, False),
                 (card.question, card.question_line, True), (card.answer, card.answer_line, False)]
        for text, line, inline in parts:
            if not _needs_render(text):
                continue   # no raw HTML block and no included text: the source check saw all of it
            try:
                rendered = to_html(text, root, inline=inline)
            except (EmbedOutside, OSError, UnicodeError, ValueError):
                continue   # the embed is reported by the fence and include checks
            problems += [Problem(page.file, line or card.line, f"{why} (in the HTML this part of the card renders "
                                                               "to, with its --8<-- includes; a raw HTML block keeps "
                                                               "`backticks` as they are)")
                         for _, why in html_problems(rendered, 1, allowed=None)]
    return problems
