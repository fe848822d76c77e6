"""Every export is cleaned behind the check (defence in depth): a card that got past `cards check` still
leaves no active HTML in the .apkg, the CrowdAnki JSON, the CSV or the flashcard text, and the
sanitiser leaves what the renderer makes, the site's real cards, byte for byte."""

import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest

import gdl_site.cards.validate as validate
from gdl_site.cards.export import deck_notes, export_cards, load_cards, to_flashcards
from gdl_site.cards.sanitise import clean_card_html, clean_card_markdown
from gdl_site.cards.validate import validate_paths

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = [
    "<script>alert(1)</script>",
    "<ScRiPt>alert(2)</sCrIpT>",
    "<img src=x onerror=alert(3)>",
    '<img src=x OnErRoR  =  "alert(4)">',
    '<iframe src="javascript:alert(5)"></iframe>',
    '<a href="java&#x09;script:alert(6)">link</a>',
    "<a href=JaVaScRiPt:alert(7)>link</a>",
    "<a href='VBScript:msgbox(8)'>link</a>",
    '<img srcset="a.png 1x, data:image/png;base64,AA 2x" src="fig.png">',
    '<span style="background:url(x)">styled</span>',
    "<svg onload=alert(9)><circle r=1 /></svg>",
    "<form action=javascript:x><input autofocus onfocus=alert(10)></form>",
]
# What must not survive in any export, read case-insensitively once entities are decoded.
LEFT_OVER = re.compile(r"<\s*(script|iframe|svg|form|input)\b|\bon[a-z]+\s*=|javascript:|vbscript:|data:|style\s*=",
                       re.I)
PAGE = ("# Hostile\n\n## A card {{#hostile-card}}\n\nBackground {inline} text.\n\n"
        '??? question "What is left?"\n\n    The answer, with {inline} in it.\n\n    {block}\n')


def _decoded(text: str) -> str:
    import html
    return html.unescape(html.unescape(text)).replace("\t", "")


@pytest.fixture
def hostile_root(tmp_path, monkeypatch):
    """A repository with one card page holding every hostile case, the HTML check switched off."""
    monkeypatch.setattr(validate, "page_html_problems", lambda page: [])
    monkeypatch.setattr(validate, "rendered_problems", lambda *a, **k: [])
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = root / "docs" / "hostile.md"
    page.write_text(PAGE.format(inline=" ".join(HOSTILE[:6]), block=" ".join(HOSTILE[6:])), encoding="utf-8")
    return root, page


def test_the_check_would_refuse_the_page_without_the_switch(tmp_path):
    page = tmp_path / "hostile.md"
    page.write_text(PAGE.format(inline=" ".join(HOSTILE[:6]), block=" ".join(HOSTILE[6:])), encoding="utf-8")
    _, problems = validate_paths([page], tmp_path)
    assert len(problems) >= len(HOSTILE)


def test_no_format_keeps_active_html(hostile_root, tmp_path):
    root, page = hostile_root
    texts = {}
    export_cards([page], "anki", tmp_path / "deck.apkg", root=root, record=False)
    with zipfile.ZipFile(tmp_path / "deck.apkg") as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    texts["anki"] = "\n".join(row[0] for row in con.execute("select flds from notes"))
    con.close()
    export_cards([page], "crowdanki", tmp_path / "crowd", root=root, record=False)
    deck = json.loads((tmp_path / "crowd" / "deck.json").read_text(encoding="utf-8"))
    texts["crowdanki"] = "\n".join(f for note in deck["notes"] for f in note["fields"])
    for fmt, name in (("csv", "cards.csv"), ("flashcards", "cards.md")):
        export_cards([page], fmt, tmp_path / name, root=root, record=False)
        texts[fmt] = (tmp_path / name).read_text(encoding="utf-8")
    for fmt, text in texts.items():
        assert "What is left?" in text and "The answer, with" in text, fmt   # the card itself is kept
        found = [m.group(0) for m in LEFT_OVER.finditer(_decoded(text))]
        assert not found, f"{fmt} keeps {found}"
        assert "alert(1)" not in text and "alert(2)" not in text, fmt   # a script goes with its content


def test_kept_inline_html_stays() -> None:
    text = "Press <kbd>Ctrl</kbd>+<kbd>C</kbd>, H<sub>2</sub>O, x<sup>2</sup> <img src=x onerror=alert(1)>"
    cleaned = clean_card_markdown(text)
    assert cleaned.startswith("Press <kbd>Ctrl</kbd>+<kbd>C</kbd>, H<sub>2</sub>O, x<sup>2</sup> ")
    assert "onerror" not in cleaned and "<img" in cleaned
    assert clean_card_html('<p><img src="../../etc/passwd"> <img src="fig.png"></p>') == \
        '<p><img> <img src="fig.png"></p>'


def test_code_and_math_in_markdown_are_not_html() -> None:
    text = "Write `<script>` as code, or $a<b$ as math:\n\n```html\n<script>alert(1)</script>\n```\n"
    assert clean_card_markdown(text) == text


def test_the_site_cards_come_out_byte_identical() -> None:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    pages, cards = load_cards(docs, ROOT)
    assert len(cards) > 50
    notes, _ = deck_notes(pages, ROOT, {})
    fields = [f for n in notes for f in n.fields]
    changed = [f[:80] for f in fields if clean_card_html(f) != f]
    assert not changed, changed
    for c in cards:
        for text in (c.title, c.background, c.question, c.answer):
            assert clean_card_markdown(text) == text, c.key
    assert clean_card_markdown(to_flashcards(pages)) == to_flashcards(pages)
