"""Chapter 1 holds one card per chapter-1 flashcard, after the foundations they assume, and corrects them.

The flashcards (chapter 1 of Foster, *Generative Deep Learning*, 2nd ed., from "Generative Model
Taxonomy" on) are listed below with their questions; the page must hold one card per flashcard
under a stable id (the deck's note identities depend on it), must open with the foundation cards,
and must state each correction on the card it belongs to, quoting the flashcard. Lists the package holds
(the six families, the taxonomy's tree and branches) are checked against it, not typed here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gdl_ref.lessons import taxonomy
from gdl_site import taxonomy_table
from gdl_site.cards.model import Card
from gdl_site.cards.parse import parse_page
from gdl_site.cards.validate import validate_pages

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "chapters" / "generative-modelling.md"

# (flashcard title, flashcard question, stable id on the page) in the flashcards' order.
FLASHCARDS = [
    ("Maximum Likelihood Estimation (MLE)",
     "What is MLE and how does it relate to finding the most likely parameter values?", "mle"),
    ("Generative Modeling as a Form of MLE",
     "How can generative modeling be seen as a form of MLE?", "generative-modelling-as-mle"),
    ("Generative Model Taxonomy", "How is the taxonomy of generative models structured?", "taxonomy"),
    ("Explicitly Model the Density Function",
     "What are explicit density models and how do they work?", "explicit-density-models"),
    ("Implicitly Model the Density Function",
     "What are implicit density models and how do they work?", "implicit-density-models"),
    ("Variational Autoencoders (VAEs)",
     "What is the main objective of Variational Autoencoders (VAEs)?", "vae-objective"),
    ("Energy-Based Models (EBMs)",
     "How do Energy-Based Models differ from Variational Autoencoders in their approach?", "ebm-vs-vae"),
    ("Diffusion Models", "How do diffusion models work?", "how-diffusion-works"),
    ("Deep Learning Core in Generative Models",
     "Why do modern generative models use deep learning?", "why-deep-learning"),
    ("The Generative Deep Learning Codebase",
     "How can the reader start building generative deep learning models using this book\u2019s resources?",
     "book-codebase"),
    ("Cloning the Repository", "How do you clone the Git repository mentioned in the text?",
     "clone-the-repository"),
    ("Using Docker for Codebase", "How does Docker simplify working with a new codebase?", "docker-environment"),
    ("Running on GPU", "How can one set up a Google Cloud environment for GPU use?", "gpu-in-the-cloud"),
    ("Generative Modeling Overview", "What are the key properties of a good generative model?",
     "desirable-properties"),
    ("Generative Models Framework", "What are the six families of generative models mentioned?", "six-families"),
    ("Getting Started with Codebase", "How do you start working with the Generative Deep Learning codebase?",
     "getting-started"),
    ("Discriminative Modeling Foundation",
     "What are the differences between generative and discriminative models?", "generative-vs-discriminative"),
]
# Cards with no flashcard of their own: the foundations of the book's chapter 1 that the flashcards assume.
FOUNDATIONS = ["sample-space", "probability-density", "parametric-modelling", "latent-space"]
# The set-up cards (the book's code, cloning, Docker, a GPU, this project's set-up), kept together.
SET_UP = ["book-codebase", "clone-the-repository", "docker-environment", "gpu-in-the-cloud", "getting-started"]
# Reading order: foundations, what a generative model is, likelihood, the taxonomy, then set-up.
PAGE_ORDER = FOUNDATIONS + [
    "generative-vs-discriminative", "desirable-properties",
    "mle", "generative-modelling-as-mle",
    "taxonomy", "explicit-density-models", "implicit-density-models", "vae-objective", "ebm-vs-vae",
    "how-diffusion-works", "why-deep-learning", "six-families",
] + SET_UP
# Questions reworded on the page because the flashcard's wording leans on text the card does not have.
REWORDED = {"clone-the-repository", "six-families"}
# Cards whose answer carries a "Correction" box: the flashcard errs there.
CORRECTED = {
    "mle", "taxonomy", "explicit-density-models", "implicit-density-models", "vae-objective", "ebm-vs-vae",
    "how-diffusion-works", "why-deep-learning", "docker-environment", "gpu-in-the-cloud",
    "desirable-properties", "six-families", "getting-started", "generative-vs-discriminative",
}
# The six families and where each sits, as the package states them (gdl_ref.lessons.taxonomy).
SIX_FAMILIES = {f.name: f.branch for f in taxonomy.trade_offs()}
FAMILY_PAGES = {"vae", "gan", "autoregressive", "flows", "ebm", "diffusion", "mle", "generative-vs-discriminative"}
CORRECTION = '!!! note "Correction"'
# For each corrected card, words of the flashcard (as the seed prints them, up to case and spacing)
# that its Correction box must quote, inside one span between straight quotes or between backticks.
FLASHCARD_QUOTES = {
    "mle": "most likely to have generated the observed data",
    "taxonomy": "Model a tractable approximation of the density function directly",
    "explicit-density-models": "return sum / windowSize + Math.random(); // Example logic",
    "implicit-density-models": "// Train the discriminator on both real and fake samples",
    "vae-objective": "the joint probability distribution $p(x)$",
    "ebm-vs-vae": "the energy of a system",
    "how-diffusion-works": "to reverse this process",
    "why-deep-learning": "without needing a priori information",
    "docker-environment": "docker run -it --rm <image-name>",
    "gpu-in-the-cloud": "--accelerator type=nvidia-tesla-k80,count=1",
    "desirable-properties": "Expressiveness",
    "six-families": "autoregressive hierarchical models",
    "getting-started": "git clone https://github.com/your-repo-url.git",
    "generative-vs-discriminative": "model the joint probability distribution $P(X, Y)$ of input-output pairs",
}


@pytest.fixture(scope="module")
def page():
    return parse_page(PAGE, ROOT)


@pytest.fixture(scope="module")
def cards(page) -> dict[str, Card]:
    return {c.id: c for c in page.cards}


def _normal(question: str) -> str:
    """Compare questions up to case, punctuation and British spelling."""
    question = question.lower().replace("\u2019", "'").replace("modeling", "modelling")
    return re.sub(r"[^a-z0-9']+", " ", question).strip()


def _split_corrections(answer: str) -> tuple[str, str]:
    """(the answer without its Correction boxes, the text of those boxes)."""
    main: list[str] = []
    boxes: list[str] = []
    inside = False
    for line in answer.splitlines():
        if line.startswith(CORRECTION):
            inside = True
            continue
        if inside and line.strip() and not line.startswith("    "):
            inside = False
        (boxes if inside else main).append(line)
    return "\n".join(main), "\n".join(boxes)


def _table_rows(text: str, which: int = 0) -> list[list[str]]:
    """Body rows of the ``which``-th Markdown table in text, as lists of cell strings."""
    tables: list[list[str]] = []
    previous_was_row = False
    for line in text.splitlines():
        is_row = line.strip().startswith("|")
        if is_row and not previous_was_row:
            tables.append([])
        if is_row:
            tables[-1].append(line.strip())
        previous_was_row = is_row
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in tables[which]]
    return [r for r in cells if not all(set(c) <= set("-: ") for c in r)][1:]


def _heading_ids(path: Path) -> set[str]:
    """The ids of a page's headings: explicit {#id}s and the slugs MkDocs makes of the others."""
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{1,6} (.*?)\s*(?:\{#([a-z0-9-]+)\})?\s*$", line)
        if heading:
            ids.add(heading.group(2) or re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading.group(1).lower())))
    return ids


def test_one_card_per_flashcard_after_the_foundations(page) -> None:
    ids = [c.id for c in page.cards]
    assert ids == PAGE_ORDER
    assert set(ids) - set(FOUNDATIONS) == {card_id for _, _, card_id in FLASHCARDS}
    assert len(ids) == len(set(ids)) == len(FLASHCARDS) + len(FOUNDATIONS)


def test_reading_order_note_links_every_card_in_page_order(page) -> None:
    text = PAGE.read_text(encoding="utf-8")
    note = text[text.index('!!! tip "Reading order"'):text.index("\n## ")]
    linked = re.findall(r"\]\(#([a-z0-9-]+)\)", note)
    assert linked == [c.id for c in page.cards]
    # The set-up cards form the last of the note's numbered groups.
    last_group = re.split(r"\n\s+\d+\. ", note)[-1]
    assert re.findall(r"\]\(#([a-z0-9-]+)\)", last_group) == SET_UP


def test_foundation_cards_show_what_they_claim(cards) -> None:
    for card_id in FOUNDATIONS:
        card = cards[card_id]
        kinds = [b.kind for b in card.code]
        # A runnable example, and the output it prints, which pytest-codeblocks compares.
        assert kinds[:2] == ["run", "output"], card_id
        assert "print(" in card.code[0].code and card.code[1].code.strip(), card_id
    # The densities integrate to one, and a density value can exceed one.
    density = cards["probability-density"].code[1].code
    assert density.count("integral 1.0000") == 2
    largest = [float(v) for v in re.findall(r"largest value ([\d.]+)", density)]
    assert max(largest) > 1 > min(largest)
    # The bounding box has the largest likelihood; a box that misses a point has none.
    box = dict(re.findall(r"^(.*?)\s+log L =\s+(\S+)$", cards["parametric-modelling"].code[1].code, re.M))
    assert float(box["bounding box"]) > float(box["2 wider on each side"]) and box["misses one point"] == "-inf"
    # Halfway in pixel space is no tin; halfway in latent space is one.
    latent = cards["latent-space"].code[1].code
    assert "pixel mean is a tin:  False" in latent and "latent mean is a tin: True" in latent


def test_every_card_is_well_formed(page) -> None:
    # Heading with an id, a background, exactly one question, an answer; math that renders;
    # every fence run, embedded or skipped with a reason (the site validator's rules).
    assert [str(p) for p in validate_pages([page], ROOT)] == []
    for card in page.cards:
        assert card.background.strip(), card.id
        assert card.question.endswith("?"), card.id
        assert len(card.answer.split()) >= 40, f"{card.id}: the answer is too thin to stand alone"
    assert len(re.findall(r"^\?\?\? question ", PAGE.read_text(encoding="utf-8"), re.M)) == len(PAGE_ORDER)


def test_questions_are_the_flashcards_own_unless_reworded(cards) -> None:
    for _, question, card_id in FLASHCARDS:
        shown = cards[card_id].question
        if card_id in REWORDED:
            assert _normal(shown) != _normal(question), f"{card_id} asks the flashcard's question: not REWORDED"
        else:
            assert _normal(shown) == _normal(question), card_id


def test_corrections_are_stated_on_their_cards(cards) -> None:
    with_box = {card_id for card_id, card in cards.items() if CORRECTION in card.answer}
    assert with_box == CORRECTED
    # What each box quotes from the flashcard: test_corrections_quote_the_flashcard.


def test_corrections_quote_the_flashcard(cards) -> None:
    assert set(FLASHCARD_QUOTES) == CORRECTED
    for card_id, quote in FLASHCARD_QUOTES.items():
        _, box = _split_corrections(cards[card_id].answer)
        box = " ".join(box.split()).lower()
        quoted = rf'(["`])[^"`]*{re.escape(quote.lower())}[^"`]*\1'  # inside one quoted span
        assert re.search(quoted, box), f"{card_id}: the Correction box does not quote {quote!r}"


def test_six_families_are_the_packages(cards) -> None:
    # The table names the families of gdl_ref.lessons.taxonomy (the flashcard's wrong ones are not among
    # them), each linked to the page that the trade-off table places it on.
    main, _ = _split_corrections(cards["six-families"].answer)
    rows = _table_rows(main)
    named = {re.sub(r"\[(.*?)\]\(.*?\)", r"\1", row[0]).lower(): row for row in rows}
    assert set(named) == set(SIX_FAMILIES)
    for family in SIX_FAMILIES:
        assert f"(../{taxonomy_table.EVIDENCE[family].page})" in named[family][0]


def test_taxonomy_places_each_family(cards) -> None:
    main, _ = _split_corrections(cards["taxonomy"].answer)
    rows = {re.sub(r"\*", "", row[0]): row[2].lower() for row in _table_rows(main)}
    # Each row of the page's table is a leaf of the package's tree ("explicit, tractable density" is
    # "tractable density"), holding the families that gdl_ref.lessons.taxonomy puts there.
    leaves = set(SIX_FAMILIES.values())
    label = {row: next((leaf for leaf in leaves if row.endswith(leaf)), None) for row in rows}
    assert None not in label.values() and set(label.values()) == leaves, label
    expected = {row: {f for f, branch in SIX_FAMILIES.items() if branch == leaf} for row, leaf in label.items()}
    for branch, families in expected.items():
        for family in SIX_FAMILIES:
            assert (family in rows[branch]) == (family in families), (branch, family)
    # The density column of the six-families table agrees with the taxonomy.
    density = {re.sub(r"\[(.*?)\]\(.*?\)", r"\1", r[0]).lower(): r[2] for r in _table_rows(cards["six-families"].answer)}
    for branch, families in expected.items():
        for family in families:
            assert density[family] == branch.removesuffix(" density"), family


def test_trade_off_table_is_generated_and_every_cell_links_to_evidence(cards) -> None:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("<!-- generated by gdl_site.taxonomy_table.trade_off_table")
    block = text[text.index("\n", start):text.index("<!-- end of the generated table -->", start)]
    shown = "\n".join(line.removeprefix("    ") for line in block.strip("\n").splitlines()).strip()
    assert shown == taxonomy_table.trade_off_table(), "regenerate the table: python -m gdl_site.taxonomy_table"
    rows = _table_rows(_split_corrections(cards["taxonomy"].answer)[0], which=1)
    assert len(rows) == 6
    branch_of = {r[0].lower(): r[2].lower() for r in _table_rows(_split_corrections(cards["taxonomy"].answer)[0])}
    for row in rows:
        family = re.sub(r"\[(.*?)\]\(.*?\)", r"\1", row[0])
        assert any(family in families and row[1] in branch for branch, families in branch_of.items()), family
        for cell in row[:1] + row[2:]:  # every cell but the branch is a link to what shows it
            target = re.fullmatch(r"\[[^\]]+\]\(\.\./([^)#]+)(?:#([a-z0-9-]+))?\)", cell)
            assert target, f"{family}: {cell!r} is not one link"
            page, anchor = ROOT / "docs" / target.group(1), target.group(2)
            if target.group(1).startswith("notebooks/"):  # made at build time from notebooks/<name>.ipynb
                page = ROOT / target.group(1).replace(".md", ".ipynb")
            assert page.is_file(), cell
            assert anchor is None or anchor in _heading_ids(page), cell
    # What each branch can report, as the taxonomy says it.
    reports = {re.sub(r"\[(.*?)\]\(.*?\)", r"\1", r[0]): r[2] for r in rows}
    assert "exact" in reports["autoregressive models"] and "exact" in reports["normalizing flows"]
    assert "bound" in reports["variational autoencoders"] and "bound" in reports["diffusion models"]
    assert "no likelihood" in reports["energy-based models"]
    assert "samples only" in reports["generative adversarial networks"]


def test_the_taxonomy_tree_is_the_packages(cards) -> None:
    # The card prints gdl_ref.lessons.taxonomy.tree() and shows its output (which pytest-codeblocks
    # compares): the tree of the page, later models included, is the package's.
    code = cards["taxonomy"].code
    shown = next(i for i, b in enumerate(code) if b.kind == "output")
    assert shown > 0 and code[shown - 1].kind == "run" and "taxonomy.tree()" in code[shown - 1].code
    assert code[shown].code.strip("\n") == taxonomy.tree()
    for family in taxonomy.trade_offs():
        assert all(later.split(":")[0] in code[shown].code for later in family.later), family.name


def test_generative_and_discriminative_defined_right(cards) -> None:
    card = cards["generative-vs-discriminative"]
    text = card.background + card.answer
    assert r"$p(y \mid x)$" in text  # discriminative
    assert "$p(x)$" in text and r"$p(x \mid y)$" in text  # generative, unlabelled and class-conditional
    main, box = _split_corrections(card.answer)
    assert "P(X, Y)" in box and "P(X, Y)" not in main
    # The demonstration runs, classifies both ways, and samples digits of a chosen class.
    kinds = [b.kind for b in card.code]
    assert kinds == ["embed", "embed", "run", "output"]
    assert "naive_bayes.sample(3, y=3" in card.code[2].code
    drawn = card.code[3].code.splitlines()
    assert len(drawn) == 9 and drawn[-1].startswith("logistic regression: no p(x | y)")


def test_ebm_and_diffusion_cards(cards) -> None:
    ebm = cards["ebm-vs-vae"]
    assert r"\exp(-E_\theta(x))" in ebm.background and "Z_\\theta" in ebm.background
    diffusion = cards["how-diffusion-works"]
    assert r"q(x_t \mid x_0)" in diffusion.background
    assert r"p_\theta(x_{t-1} \mid x_t)" in diffusion.background
    assert r"\epsilon_\theta" in diffusion.answer


def test_java_replaced_by_pytorch_that_runs(page, cards) -> None:
    assert not [b for c in page.cards for b in c.code if b.lang == "java"]
    assert "```java" not in PAGE.read_text(encoding="utf-8")
    for card_id in ("mle", "explicit-density-models", "implicit-density-models", "generative-vs-discriminative"):
        assert any(b.kind == "run" and b.lang == "python" for b in cards[card_id].code), card_id
    # The MLE fits, the autoregressive model and the GAN step are the package's own code, embedded.
    refs = [r for c in page.cards for b in c.code if b.kind == "embed" for r in b.refs]
    assert refs == ["src/gdl_ref/lessons/discriminative.py:generative", "src/gdl_ref/lessons/discriminative.py:discriminative",
                    "src/gdl_ref/lessons/mle.py:closed_form", "src/gdl_ref/lessons/mle.py:gd",
                    "src/gdl_ref/lessons/sequence.py:log_prob", "src/gdl_ref/lessons/sequence.py:sample",
                    "src/gdl_ref/models/gan.py:steps"]
    # The MLE snippet compares the closed form with gradient descent and shows both.
    mle = cards["mle"].code
    assert [b.kind for b in mle] == ["embed", "embed", "run", "output"]
    closed, descent = mle[3].code.splitlines()
    assert closed.split(":")[1].strip() == descent.split(":")[1].strip()


def test_set_up_cards(cards) -> None:
    text = PAGE.read_text(encoding="utf-8")
    # The K80 is only quoted (test_corrections_quote_the_flashcard): no command asks for one; the command asks for a T4.
    gpu = cards["gpu-in-the-cloud"]
    assert not [b for c in cards.values() for b in c.code if "k80" in b.code.lower()]
    gcloud = [b for b in gpu.code if "gcloud compute instances create" in b.code]
    assert len(gcloud) == 1 and gcloud[0].kind == "skipped"
    assert "--accelerator=type=nvidia-tesla-t4,count=1" in gcloud[0].code
    assert any(b.kind == "run" and "torch.cuda.is_available()" in b.code for b in gpu.code)
    assert any(b.kind == "skipped" and "pytest -m gpu" in b.code for b in gpu.code)
    # The book's set-up in Docker: the commands are shown, not run.
    assert any(b.kind == "skipped" and "docker compose build" in b.code for b in cards["docker-environment"].code)
    # The book's repository names its GPU compose file docker-compose.gpu.yml.
    assert "-f docker-compose.gpu.yml" in cards["docker-environment"].answer
    assert "docker-compose-gpu" not in text


def test_commands_that_need_a_network_are_shown_not_run(page) -> None:
    needs_network = ("git clone", "docker ", "gcloud ", "pip install", "pytest -m gpu", "mkdocs serve")
    for card in page.cards:
        for block in card.code:
            if any(word in block.code for word in needs_network) and block.lang in {"bash", "sh"}:
                assert block.kind == "skipped", f"line {block.line}: {block.code.splitlines()[0]}"


def test_install_commands_match_the_readme(cards) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = re.search(r"python[\d.]* -m venv \.venv && \.venv/bin/pip install [^\n&]*", readme)
    assert install, "README.md has no install command"
    command = install.group(0).strip()
    shown = "\n".join(b.code for b in cards["getting-started"].code if b.kind == "skipped")
    assert command in shown
    for tool in (".venv/bin/pytest", ".venv/bin/mkdocs serve"):
        assert tool in readme and tool in shown


def test_links_stay_inside_the_site(page) -> None:
    text = PAGE.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(\.\./families/([a-z-]+)\.md\)", text))
    assert linked == FAMILY_PAGES
    anchors = set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
    assert anchors and anchors <= {c.id for c in page.cards}
