"""Import: the seed's flashcards become a valid chapter page; what is not mapped is reported."""

from pathlib import Path

import pytest

from gdl_site.cards.importer import ImportFailed, import_flashcards, slugify
from gdl_site.cards.parse import parse_text
from gdl_site.cards.validate import validate_pages

ROOT = Path(__file__).resolve().parents[1]
SEED = """# Flashcards: Book (Part 4)

**Starting Chapter:** Taxonomy

---

#### Maximum Likelihood Estimation (MLE)
Formally, given observed data $D $, we aim to find $\\theta$ such that:
$$\\hat{\\theta} = \\arg\\max_{\\theta} p(D|\\theta)$$
Done.

:p What is MLE?
??x
The parameter values $\\theta $ that maximize the likelihood function$p(D|\\theta)$given data.
To do it:
1. write the likelihood;
2. maximise it.
x??

---

#### Implicit models
Background context: GANs sample without a density.

:p What is an implicit model?
??x
Example code in Java:
```java
public class GAN {}
```
x??

---

#### Cloning
Background context explaining that the code is on GitHub.

:p How do you clone it?
??x
```bash
git clone https://github.com/example/repo.git
```
x??
"""


def test_slugify():
    assert slugify("Maximum Likelihood Estimation (MLE)") == "maximum-likelihood-estimation-mle"
    assert slugify("Énergie — basée") == "energie-basee"
    assert slugify("???") == "card"


def test_seed_like_file_becomes_a_valid_page():
    result = import_flashcards(SEED, "Generative modelling")
    page = parse_text(result.page, "ch.md", ROOT)
    assert validate_pages([page], ROOT) == []
    assert result.cards == 3 and page.title == "Generative modelling"
    assert page.intro == "**Starting Chapter:** Taxonomy"
    mle, implicit, clone = page.cards
    assert (mle.id, implicit.id, clone.id) == ("maximum-likelihood-estimation-mle", "implicit-models", "cloning")
    assert mle.background.splitlines() == [
        "Formally, given observed data $D$, we aim to find $\\theta$ such that:", "",
        "$$\\hat{\\theta} = \\argmax_{\\theta} p(D|\\theta)$$", "", "Done."]
    assert mle.answer.splitlines()[0] == (
        "The parameter values $\\theta$ that maximize the likelihood function $p(D|\\theta)$ given data.")
    assert mle.answer.splitlines()[1:4] == ["To do it:", "", "1. write the likelihood;"]
    assert implicit.background == "GANs sample without a density."
    assert clone.background == "The code is on GitHub."


def test_what_is_not_mapped_is_kept_and_reported():
    result = import_flashcards(SEED, "Generative modelling")
    page = parse_text(result.page, "ch.md")
    implicit, clone = page.cards[1:]
    assert [(c.kind, c.lang) for c in implicit.code] == [("other", "java")]
    assert "*Imported java code from the flashcards: not Python, so no test runs it" in implicit.answer
    assert [(c.kind, c.lang) for c in clone.code] == [("skipped", "bash")]
    messages = [n.render("seed.txt", "ch.md") for n in result.notes]
    assert messages == [
        'seed.txt:28: card "Implicit models": java code kept on the page with a note; replace it with Python or remove it',
        'seed.txt:40: card "Cloning": bash command marked shown-not-run, with a generic reason: check it, '
        "or make the command runnable",
    ]


def test_ids_avoid_those_on_the_site():
    result = import_flashcards(SEED, "Ch", taken={"cloning": "docs/setup.md:12"})
    assert "## Cloning {#cloning-2}" in result.page
    assert 'id "cloning" is taken (docs/setup.md:12): this card is {#cloning-2}' in [n.message for n in result.notes]


def test_problems_of_the_generated_page_are_reported():
    text = "#### Bad math\nBackground $\\frac{a}{b$.\n\n:p Q?\n??x\nA.\nx??\n"
    result = import_flashcards(text, "Ch")
    assert [(n.line, n.page_line) for n in result.notes] == [(5, True)]
    assert result.notes[0].message.startswith("math will not render: unbalanced braces")


def test_missing_pieces_are_reported():
    text = "#### No question\nJust text.\n\n---\n\n#### Open answer\nBg.\n:p Q?\n??x\nNever closed.\n"
    notes = [n.message for n in import_flashcards(text, "Ch").notes]
    assert 'card "No question" has no :p question' in notes
    assert 'card "Open answer": its answer has no closing x??' in notes


@pytest.mark.parametrize("text, message", [
    ("Just some prose.\n\nNo cards.\n", "no flashcards found"),
    ('# Page\n\n## A {#a}\n\nB.\n\n??? question "Q?"\n\n    A.\n', "this is a chapter page already"),
    ("", "no flashcards found"),
])
def test_not_flashcards(text, message):
    with pytest.raises(ImportFailed, match=message):
        import_flashcards(text, "Ch")


def test_chapter_name_needed_without_header():
    with pytest.raises(ImportFailed, match="pass --chapter NAME"):
        import_flashcards("#### T\nB.\n:p Q?\n??x\nA.\nx??\n")


def test_ids_the_file_gives_are_kept():
    text = "#### Cloning {#cloning}\nBackground.\n\n:p Q?\n??x\nA.\nx??\n"
    result = import_flashcards(text, "Ch", taken={"cloning": "docs/setup.md:12"})
    assert "## Cloning {#cloning}" in result.page
    assert [n.message for n in result.notes] == [
        'id "cloning" is also used at docs/setup.md:12: kept, since the file gives it; two pages cannot both keep it']


def test_a_separator_inside_a_fence_stays_in_the_card_and_an_open_fence_is_reported():
    text = ("#### Rules\nBg.\n\n:p Q?\n??x\n```text\n---\n#### not a title\n```\nx??\n\n---\n\n"
            "#### Open\nBg.\n\n:p Q?\n??x\n```text\nnever closed\n")
    result = import_flashcards(text, "Ch")
    assert result.cards == 2
    assert "    ---\n    #### not a title\n    ```" in result.page
    assert "a code fence is never closed: closed at the end of the file" in [n.message for n in result.notes]
