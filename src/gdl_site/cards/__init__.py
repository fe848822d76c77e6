"""Card tools: parse chapter pages into cards, validate them, import and export flashcards.

A chapter page holds cards; a card is a `## Title {#id}` heading, background text and one
`??? question "..."` admonition whose indented body is the answer (see CONTRIBUTING.md).

Modules: `model` (the Card record), `parse`, `validate`, `html_safety` (no active HTML in a card), `mathml` (TeX to MathML), `fences`
(which code fences a test runs), `embeds` (`--8<--` paths stay inside the repository),
`importer` (flashcard text to a page), `export` (Anki, CrowdAnki, CSV, flashcard text; imports
genanki), `render` (card text as Anki HTML, figures as media), `notetype` (the pinned Anki note
type), `tags`, `lock` (the GUID lock file, cards.lock.json), `crowdanki`, `card_footer` (the
Markdown extension that ends each card with a report link and its verification line), `cli`
(`gdl-ref cards check|import|export|lock`).
"""

from __future__ import annotations

from .mathml import MathError, to_mathml
from .model import Card, CodeBlock, Page, Problem
from .parse import parse_page, parse_text, parse_tree
from .validate import validate_pages, validate_paths

__all__ = ["Card", "CodeBlock", "Page", "Problem", "MathError", "to_mathml", "parse_page", "parse_text",
           "parse_tree", "validate_pages", "validate_paths"]
