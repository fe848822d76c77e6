"""The card record: what the card tools read from a chapter page and write out.

A chapter page (docs/**/*.md) holds cards; each card is

    ## Title {#stable-id}

    Background: one or more paragraphs.

    ??? question "The question?"

        The answer, indented four spaces.

`gdl_site.cards.parse` turns a page into a `Page` of `Card`s, keeping the file and line of
every part so that `gdl_site.cards.validate` can say `file:line: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fences import Fence

__all__ = ["Card", "CodeBlock", "Page", "Problem"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a page: where, and what."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class CodeBlock:
    """A code fence inside a card (see gdl_site.cards.fences for the kinds)."""

    kind: str          # run | skipped | output | embed | untested | other
    info: str          # the fence's info string, e.g. 'python title="src/gdl_ref/models/flows.py"'
    lang: str          # first word of info, lower case ("" for none)
    code: str          # the fence's body, dedented; for an embed, the --8<-- lines
    line: int          # 1-based line of the opening fence in the page
    refs: list[str] = field(default_factory=list)   # embed references "path:section"


@dataclass
class Card:
    """One card: heading with a stable id, background, one question and its answer."""

    chapter: str                 # the page's file stem, e.g. "mle"; with id it makes the Anki GUID
    id: str                      # the stable id from `## Title {#id}` ("" when missing)
    title: str                   # heading text without the {#id}
    background: str              # Markdown between the heading and the question
    question: str                # the text of `??? question "..."` ("" when missing)
    answer: str                  # the admonition body, dedented four spaces
    file: str                    # the page, relative to the repository root where possible
    line: int                    # line of the `## ...` heading
    background_line: int = 0     # first line of the background (0: none)
    question_line: int = 0       # line of `??? question` (0: none)
    answer_line: int = 0         # first non-blank line of the answer (0: none)
    chapter_title: str = ""      # the page title (front matter `title:` or its `# H1`)
    tags: list[str] = field(default_factory=list)
    code: list[CodeBlock] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Site-wide name of the card, `chapter/id`."""
        return f"{self.chapter}/{self.id}"


@dataclass
class Page:
    """A parsed chapter page: its cards and the problems the parser met."""

    file: str
    chapter: str                 # file stem
    title: str                   # front matter title, else the H1, else the stem
    is_card_page: bool           # declares cards (see parse.is_card_page)
    intro: str = ""              # Markdown between the H1 and the first card or section
    cards: list[Card] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)   # every fence of the page, classified
    text: str = field(default="", repr=False)           # the page's Markdown source
    readable: bool = True                               # False: the file could not be read as UTF-8 text
