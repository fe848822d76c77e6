"""Cards in Anki look like the page: code is highlighted, a figure travels with the deck as a media file."""

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from gdl_site.cards.export import CardProblems, export_cards

TREE = "gdl-ref_" + hashlib.sha256(b"docs/assets/tree.svg").hexdigest()[:10] + "_tree.svg"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>tree</title></svg>\n'
PAGE = "# Figures\n\n## A figure {{#a-figure}}\n\nBackground.\n\n??? question \"What does it show?\"\n\n    {figure}\n\n" \
       "    ```python\n    import math\n    print(math.pi)\n    ```\n"


def deck(apkg: Path, tmp: Path) -> tuple[dict[str, bytes], list[str]]:
    """(media name -> bytes, the notes' fields) of an .apkg."""
    with zipfile.ZipFile(apkg) as z:
        names = json.loads(z.read("media"))
        media = {name: z.read(number) for number, name in names.items()}
        z.extract("collection.anki2", tmp)
    con = sqlite3.connect(tmp / "collection.anki2")
    fields = [r[0] for r in con.execute("select flds from notes")]
    con.close()
    return media, fields


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "assets").mkdir(parents=True)
    (tmp_path / "docs" / "families").mkdir()
    (tmp_path / "docs" / "assets" / "tree.svg").write_text(SVG, encoding="utf-8")
    (tmp_path / "outside.svg").write_text(SVG, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("src", ["../assets/tree.svg", "/assets/tree.svg"])
def test_a_figure_ships_as_media_and_code_is_highlighted(repo, tmp_path, src):
    page = repo / "docs" / "families" / "figures.md"
    page.write_text(PAGE.format(figure=f"![The taxonomy as a tree]({src})"), encoding="utf-8")
    out = tmp_path / "deck.apkg"
    export_cards([page], "anki", out, root=repo)
    media, (fields,) = deck(out, tmp_path)
    assert media == {TREE: SVG.encode()}
    answer = fields.split("\x1f")[5]
    assert f'<img alt="The taxonomy as a tree" src="{TREE}"' in answer
    assert '<span class="kn">import</span>' in answer and '<span class="nb">print</span>' in answer


@pytest.mark.parametrize("src, why", [("../assets/missing.svg", 'figure "../assets/missing.svg" does not exist'),
                                      ("../../../outside.svg", 'climbs out of the repository'),
                                      ("https://example.org/x.png", "is a URL: a deck works offline")])
def test_a_figure_that_cannot_ship_stops_the_deck(repo, tmp_path, src, why):
    page = repo / "docs" / "families" / "figures.md"
    page.write_text(PAGE.format(figure=f"![x]({src})"), encoding="utf-8")
    for fmt in ("anki", "crowdanki"):
        with pytest.raises(CardProblems) as err:
            export_cards([page], fmt, tmp_path / f"deck.{fmt}", root=repo)
        (problem,) = err.value.problems
        assert (problem.file, problem.line) == ("docs/families/figures.md", 3) and why in problem.message
        assert not (tmp_path / f"deck.{fmt}").exists()


def test_an_inline_data_picture_is_refused(repo, tmp_path):
    page = repo / "docs" / "families" / "figures.md"
    page.write_text(PAGE.format(figure='<img alt="dot" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'),
                    encoding="utf-8")
    out = tmp_path / "deck.apkg"
    with pytest.raises(CardProblems, match=r'figures.md:\d+: <img src="data:...">: a data: URL runs or embeds content'):
        export_cards([page], "anki", out, root=repo)
    assert not out.exists()


def test_a_raw_html_figure_in_single_quotes_ships_too(repo, tmp_path):
    page = repo / "docs" / "families" / "figures.md"
    page.write_text(PAGE.format(figure="<img alt='t' src='../assets/tree.svg'>"), encoding="utf-8")
    out = tmp_path / "deck.apkg"
    export_cards([page], "anki", out, root=repo)
    media, (fields,) = deck(out, tmp_path)
    assert list(media) == [TREE] and f"src='{TREE}'" in fields


def test_media_names_of_different_files_differ():
    from gdl_site.cards.render import media_name

    assert media_name("docs/a_b/c.svg") != media_name("docs/a/b_c.svg")
    assert media_name("docs/a/c.svg").endswith("_c.svg") and media_name("docs/a/c.svg").startswith("gdl-ref_")
