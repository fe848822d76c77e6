"""Card tools: parse chapter pages into cards, validate them, import and export flashcards.

A chapter page holds cards; a card is a `## Title {#id}` heading, background text and one
`??? question "..."` admonition whose indented body is the answer (see CONTRIBUTING.md).

Modules: model (the Card record), parse, validate, mathml (TeX to MathML), fences (which
code fences a test runs), importer (flashcard text to a page), export (Anki, CSV, text), cli.
"""

from __future__ import annotations

__all__ = ["Card", "parse_page", "parse_tree", "validate_paths", "to_mathml", "MathError"]


def __getattr__(name: str):  # lazy: the site build imports only mathml
    if name == "Card":
        from .model import Card
        return Card
    if name in {"parse_page", "parse_tree"}:
        from . import parse
        return getattr(parse, name)
    if name == "validate_paths":
        from .validate import validate_paths
        return validate_paths
    if name in {"to_mathml", "MathError"}:
        from . import mathml
        return getattr(mathml, name)
    raise AttributeError(name)
