"""Export: the Anki deck's notes and GUIDs, the CSV, and a stable flashcard round trip."""

import csv
import re
import sqlite3
import zipfile
from pathlib import Path

import genanki
import pytest

from gdl_site.cards.export import DECK_ID, MODEL_ID, CardProblems, build_deck, export_cards
from gdl_site.cards.importer import import_flashcards

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "cards_corpus" / "good_card.md"
SEED_LIKE = """# Flashcards: Round trip

---

#### Maximum Likelihood Estimation (MLE)
Background context: Given data $D $, pick $\\theta$ such that:
$$\\hat{\\theta} = \\arg\\max_{\\theta} p(D|\\theta)$$

:p What is MLE?
??x
The parameters that make the data$D$most probable.
```java
class A {}
```
```bash
git clone https://example.org/repo.git
```
x??

---

#### Maximum Likelihood Estimation (MLE)
Background.

:p Same title twice?
??x
Then the second id gets a suffix.
x??

---
"""


def notes(apkg: Path, tmp_path: Path) -> list[tuple]:
    with zipfile.ZipFile(apkg) as z:
        assert "collection.anki2" in z.namelist()
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    try:
        return con.execute("select guid, mid, flds, tags from notes order by id").fetchall()
    finally:
        con.close()


def test_anki_deck_one_note_per_card_with_stable_guids(tmp_path):
    out = tmp_path / "deck.apkg"
    cards = export_cards([GOOD], "anki", out, root=ROOT, timestamp=1_700_000_000)
    rows = notes(out, tmp_path)
    assert len(rows) == len(cards) == 2
    assert [r[0] for r in rows] == [genanki.guid_for("good_card", "corpus-mle"),
                                    genanki.guid_for("good_card", "corpus-braces")]
    assert {r[1] for r in rows} == {MODEL_ID}
    key, chapter, title, background, question, answer, source = rows[0][2].split("\x1f")
    assert (key, chapter, title) == ("good_card/corpus-mle", "A good chapter", "Maximum likelihood")
    assert "\\[\\hat\\theta = \\operatorname*{arg\\,max}_\\theta \\log p(D \\mid \\theta)\\]" in background
    assert "\\(D\\)" in background and "$" not in background
    assert '<div class="highlight"><pre><span></span><code><span class="kn">import</span>' in answer
    assert source == "tests/cards_corpus/good_card.md:5"
    embed_answer = rows[1][2].split("\x1f")[5]
    assert "def _check_braces(tex: str) -&gt; None:" in re.sub(r"<[^>]+>", "", embed_answer)
    assert "--8&lt;--" not in embed_answer
    assert "pytest-codeblocks" not in embed_answer
    assert rows[0][3].split() == ["gdl-ref::page::good_card"]


def test_deck_id_is_fixed(tmp_path):
    out = tmp_path / "deck.apkg"
    export_cards([GOOD], "anki", out, root=ROOT)
    with zipfile.ZipFile(out) as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    decks = con.execute("select decks from col").fetchone()[0]
    con.close()
    assert f'"{DECK_ID}"' in decks and '"name": "gdl-ref"' in decks


def test_build_deck_for_the_site(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ch.md").write_text("# Ch\n\n## A {#a}\n\nBg.\n\n??? question \"Q?\"\n\n    A.\n")
    (docs / "guide.md").write_text("# Guide\n\nNo cards here.\n")
    assert build_deck(docs, tmp_path / "site" / "gdl-ref.apkg") == 1
    assert len(notes(tmp_path / "site" / "gdl-ref.apkg", tmp_path)) == 1


def test_csv(tmp_path):
    out = tmp_path / "cards.csv"
    export_cards([GOOD], "csv", out, root=ROOT)
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [r["key"] for r in rows] == ["good_card/corpus-mle", "good_card/corpus-braces"]
    assert rows[0]["question"] == "What does maximum likelihood estimate, and how?"
    assert "def _check_braces" in rows[1]["answer"]


def test_problems_stop_the_export(tmp_path):
    with pytest.raises(CardProblems) as err:
        export_cards([ROOT / "tests" / "cards_corpus" / "no_answer.md"], "anki", tmp_path / "x.apkg", root=ROOT)
    assert [p.line for p in err.value.problems] == [7, 9]
    assert not (tmp_path / "x.apkg").exists()


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="choose one of anki, csv, flashcards, crowdanki"):
        export_cards([GOOD], "pdf", tmp_path / "x", root=ROOT)


def test_flashcards_round_trip_is_byte_identical(tmp_path):
    page = tmp_path / "docs" / "round-trip.md"
    page.parent.mkdir()
    page.write_text(import_flashcards(SEED_LIKE, "Round trip").page, encoding="utf-8")
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    export_cards([page], "flashcards", first, root=ROOT)
    page.write_text(import_flashcards(first.read_text(encoding="utf-8"), "Round trip").page, encoding="utf-8")
    export_cards([page], "flashcards", second, root=ROOT)
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text(encoding="utf-8")
    assert "#### Maximum Likelihood Estimation (MLE) {#maximum-likelihood-estimation-mle}\n" in text
    assert "{#maximum-likelihood-estimation-mle-2}" in text


def test_round_trip_of_the_good_card(tmp_path):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    export_cards([GOOD], "flashcards", first, root=ROOT)
    page = tmp_path / "good_card.md"
    page.write_text(import_flashcards(first.read_text(encoding="utf-8")).page, encoding="utf-8")
    export_cards([page], "flashcards", second, root=ROOT)
    assert first.read_bytes() == second.read_bytes()


def test_card_text_that_looks_like_flashcard_syntax_survives(tmp_path):
    page = tmp_path / "tricky.md"
    source = ("# Tricky\n\n## Syntax in the text {#tricky}\n\nA rule follows.\n\n---\n\n:p is not a question here.\n\n"
              '??? question "What is x??"\n\n    ??x\n\n    Ends like a closer x??\n\n    ```text\n    ---\n    x??\n    ```\n')
    page.write_text(source, encoding="utf-8")
    text = tmp_path / "tricky.txt"
    export_cards([page], "flashcards", text, root=ROOT)
    assert "\n\\---\n" in text.read_text() and "\n\\:p is not" in text.read_text()
    assert import_flashcards(text.read_text(encoding="utf-8")).page == source


def test_included_markdown_is_expanded_in_the_export(tmp_path):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "docs" / "table.md").write_text("<!-- --8<-- [start:t] -->\n| a | b |\n|---|---|\n| 1 | 2 |\n"
                                                "<!-- --8<-- [end:t] -->\n", encoding="utf-8")
    page.write_text("# P\n\n## C {#p-c}\n\nBackground.\n\n??? question \"Q?\"\n\n    Numbers:\n\n"
                    "    --8<-- \"docs/table.md:t\"\n", encoding="utf-8")
    out = tmp_path / "cards.csv"
    export_cards([page], "csv", out, root=tmp_path)
    (row,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    answer = row["answer"]
    assert "| 1 | 2 |" in answer and "8<--" not in answer
