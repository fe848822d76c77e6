"""The Anki note type ("model") and deck of the gdl-ref cards, shared by the .apkg and CrowdAnki exports.

Anki matches a note type across versions of a deck by its id. A note type whose fields or
templates change while its id stays the same leaves Anki with notes of the old shape under the new
name, so such a change must come with a new `MODEL_ID` (never an old one). `model_fingerprint`
hashes the fields and the templates; `tests/test_cards_notetype.py` pins the fingerprint of each
model id and fails when they drift apart. The stylesheet is not in the fingerprint: Anki applies
a new stylesheet to the existing notes without harm.

Code is highlighted with Pygments classes (the `highlight` CSS class of Python-Markdown's
codehilite); the stylesheet carries a light and a night-mode colour scheme for them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DeckNote", "MODEL_ID", "MODEL_NAME", "DECK_ID", "DECK_NAME", "DECK_DESCRIPTION", "FIELDS", "TEMPLATES",
           "css", "note_model", "model_fingerprint"]


@dataclass
class DeckNote:
    """One card as a note of this note type: its GUID, the fields as HTML (in FIELDS order), its tags."""

    guid: str
    fields: list[str]
    tags: list[str]


MODEL_ID = 1_607_392_411      # a new id whenever FIELDS or TEMPLATES change (see model_fingerprint)
MODEL_NAME = "gdl-ref card"
DECK_ID = 2_059_400_187       # fixed: the deck "gdl-ref"
DECK_NAME = "gdl-ref"
DECK_DESCRIPTION = "Generative deep learning as cards (gdl-ref)."
FIELDS = ["Key", "Chapter", "Title", "Background", "Question", "Answer", "Source"]
FRONT = ('<div class="chapter">{{Chapter}}</div><h3>{{Title}}</h3>'
         '<div class="background">{{Background}}</div><div class="question">{{Question}}</div>')
BACK = '{{FrontSide}}<hr id="answer"><div class="answer">{{Answer}}</div><div class="source">{{Source}}</div>'
TEMPLATES = [{"name": "Card", "qfmt": FRONT, "afmt": BACK}]
BASE_CSS = """.card { font-family: system-ui, sans-serif; font-size: 18px; text-align: left; max-width: 46em; margin: auto; }
.chapter { color: #777; font-size: 14px; }
.question { font-weight: 600; margin-top: 1em; }
pre { background: #f5f5f5; padding: .6em; overflow-x: auto; font-size: 14px; }
.nightMode pre { background: #2b2b2b; }
img { max-width: 100%; }
.source { color: #999; font-size: 12px; margin-top: 1.5em; }"""
LIGHT_STYLE, NIGHT_STYLE = "default", "monokai"   # Pygments colour schemes


@lru_cache(maxsize=1)
def css() -> str:
    """The note type's stylesheet: the layout, then Pygments' light and night-mode code colours."""
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(style=LIGHT_STYLE).get_style_defs(".highlight")
    night = HtmlFormatter(style=NIGHT_STYLE).get_style_defs(".nightMode .highlight")
    return f"{BASE_CSS}\n{light}\n{night}\n"


def model_fingerprint() -> str:
    """SHA-256 of the fields and templates (name, front, back): what a note of this type is made of."""
    spec = {"fields": FIELDS, "templates": [{k: t[k] for k in ("name", "qfmt", "afmt")} for t in TEMPLATES]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def note_model():
    """The genanki Model of the cards."""
    import genanki

    templates = [dict(t) for t in TEMPLATES]   # genanki adds keys to the dicts it is given
    return genanki.Model(MODEL_ID, MODEL_NAME, fields=[{"name": f} for f in FIELDS], templates=templates, css=css())
