"""The validator on a corpus of malformed cards: each produces exactly the messages expected.

tests/cards_corpus/<case>.md (or a folder <case>/ of pages) is checked on its own, with the
repository as root; tests/cards_corpus/<case>.expected lists the `file:line: message` lines
it must produce, in order (an empty file: the case is valid).
"""

from pathlib import Path

import pytest

from gdl_site.cards.parse import parse_text
from gdl_site.cards.validate import check_math, validate_pages, validate_paths

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "cards_corpus"
CASES = sorted(p.with_suffix("").name for p in CORPUS.glob("*.expected"))


def test_corpus_is_complete():
    inputs = {p.stem for p in CORPUS.glob("*.md")} | {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert inputs == set(CASES)
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case, monkeypatch):
    monkeypatch.chdir(ROOT)
    target = CORPUS / case if (CORPUS / case).is_dir() else CORPUS / f"{case}.md"
    _, problems = validate_paths([target.relative_to(ROOT)], ROOT)
    expected = (CORPUS / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    assert [str(p) for p in problems] == expected


def test_good_card_is_parsed_into_its_parts():
    pages, problems = validate_paths([CORPUS / "good_card.md"], ROOT)
    assert problems == []
    (page,) = pages
    assert page.title == "A good chapter" and page.intro == "An introduction, which belongs to no card."
    mle, braces = page.cards
    assert (mle.chapter, mle.id, mle.title) == ("good_card", "corpus-mle", "Maximum likelihood")
    assert (mle.line, mle.background_line, mle.question_line, mle.answer_line) == (5, 7, 13, 15)
    assert mle.question == "What does maximum likelihood estimate, and how?"
    assert mle.background.startswith("Given data $D$") and mle.background.endswith("$$")
    assert mle.answer.splitlines()[0] == "The parameters $\\hat\\theta$ that make the observed data most probable: maximise"
    assert [(c.kind, c.lang, c.line) for c in mle.code] == [("run", "python", 18), ("output", "text", 26)]
    assert mle.code[0].code == "import math\n\nprint(round(-math.log(0.5), 4))\n"
    assert [c.kind for c in braces.code] == ["embed", "skipped"]
    assert braces.code[0].refs == ["src/gdl_site/cards/mathml.py:braces"]
    assert braces.tags == ["good_card"]


def test_every_problem_is_reported_at_once():
    text = "# T\n\n## A\n\n??? question\n\n## B {#b}\n\nbg $x $\n"
    page = parse_text(text, "p.md")
    found = [(p.line, p.message.split(":")[0]) for p in validate_pages([page])]
    assert found == [(3, 'card "A" has an empty background'), (3, "card heading has no stable id"),
                     (5, "the question has no answer"), (5, "the question has no text"),
                     (7, 'card "B" has no question'), (9, "a $ that starts no formula")]


def test_page_without_questions_is_not_a_card_page():
    page = parse_text("# Guide\n\n## Section\n\nText.\n", "guide.md")
    assert not page.is_card_page and page.cards == [] and validate_pages([page]) == []


@pytest.mark.parametrize("text, n", [
    ("$a$ and $b$ and \\(c\\)", 0),
    ("$$\na\n$$", 0),
    ("\\[ x \\]", 0),
    ("\\begin{align*} a &= b \\end{align*}", 0),
    ("costs \\$3, `$PATH`", 0),
    ("$x $", 1),
    ("$\\frac{1}{2$", 1),
])
def test_check_math(text, n):
    assert len(check_math(text, 1, "p.md")) == n
