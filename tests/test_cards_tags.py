"""Anki tags: page, book chapter and family; the family table agrees with the model registry."""

from pathlib import Path

from gdl_site.cards.parse import parse_text, parse_tree
from gdl_site.cards.tags import FAMILY_PAGES, page_tags
from gdl_ref.models.registry import names

ROOT = Path(__file__).resolve().parents[1]


def test_family_pages_name_the_registry_families_and_exist():
    assert sorted(FAMILY_PAGES.values()) == sorted(names())
    for page in FAMILY_PAGES:
        assert (ROOT / "docs" / "families" / f"{page}.md").is_file()


def test_tags_of_a_family_page():
    page = parse_text("---\ntags: [density models]\n---\n# Flows\n\nThe book covers flows in chapter 6 of "
                      "*Generative Deep Learning* (Foster).\n\n## C {#c}\n\nB.\n\n??? question \"Q?\"\n\n    A.\n",
                      "docs/families/flows.md")
    assert page_tags(page) == ["gdl-ref::page::flows", "gdl-ref::book-chapter::06", "gdl-ref::family::flow",
                               "density-models"]


def test_every_card_page_of_the_site_has_a_book_chapter():
    for page in parse_tree([ROOT / "docs"], ROOT):
        if page.is_card_page:
            tags = page_tags(page)
            assert any(t.startswith("gdl-ref::book-chapter::") for t in tags), page.file
            assert all(" " not in t for t in tags)
