"""The cards of the site pass the validator: the same check as `gdl-ref cards check`."""

from pathlib import Path

from gdl_site.cards.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]


def test_site_cards_are_valid():
    pages, problems = validate_paths([ROOT / "docs"], ROOT)
    assert not problems, "gdl-ref cards check finds:\n" + "\n".join(map(str, problems))


def test_card_ids_are_unique_and_every_card_page_has_cards():
    pages, _ = validate_paths([ROOT / "docs"], ROOT)
    for page in pages:
        if page.is_card_page:
            assert page.cards, f"{page.file} declares cards but has none"
