"""Embeds stay inside the repository: the validator reports an escape at file:line, the export refuses it.

Each case builds a small repository in a temporary folder, with a secret file beside it (outside
the root); no export may ever contain the secret's text.
"""

from pathlib import Path

import pytest

from gdl_site.cards.cli import main
from gdl_site.cards.embeds import EmbedOutside, contained, expand, snippet_refs
from gdl_site.cards.export import FORMATS, CardProblems, export_cards
from gdl_site.cards.validate import validate_paths

SECRET = "SECRET-ACCOUNT-LINE"
CARD = "# Chapter\n\n## A card {{#a-card}}\n\nBackground.\n\n??? question \"Q?\"\n\n    Answer:\n\n{body}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    (root / "src.py").write_text("# --8<-- [start:s]\nx = 1\n# --8<-- [end:s]\n", encoding="utf-8")
    return root


def page(root: Path, body: str) -> Path:
    path = root / "docs" / "ch.md"
    path.write_text(CARD.format(body="\n".join("    " + ln if ln else "" for ln in body.splitlines())),
                    encoding="utf-8")
    return path


ESCAPES = {
    "absolute": ('--8<-- "{secret}"', "is absolute"),
    "climbing": ('--8<-- "docs/../../secret.txt"', 'climbs out of the repository with ".."'),
    "single quotes": ("--8<-- '../secret.txt'", 'climbs out of the repository with ".."'),
    "block form": ("--8<--\n../secret.txt\n--8<--", 'climbs out of the repository with ".."'),
    "in a fence": ('```python\nx = 1\n--8<-- "../secret.txt"\n```', 'climbs out of the repository with ".."'),
    "embed fence": ('```python title="x"\n--8<-- "../secret.txt"\n```', 'climbs out of the repository with ".."'),
    "a URL": ('--8<-- "https://example.org/x.md"', "is a URL"),
}


@pytest.mark.parametrize("case", ESCAPES)
def test_an_escape_is_reported_at_its_line_and_refused_by_the_export(repo, case, capsys):
    line, message = ESCAPES[case]
    path = page(repo, line.format(secret=repo.parent / "secret.txt"))
    _, problems = validate_paths([path], repo)
    (escape,) = [p for p in problems if message in p.message]
    assert escape.file == "docs/ch.md" and escape.line == {"block form": 12, "in a fence": 13, "embed fence": 12}.get(case, 11)
    for fmt in FORMATS:
        out = repo.parent / f"out.{fmt}"
        with pytest.raises(CardProblems):
            export_cards([path], fmt, out, root=repo)
        assert not out.exists()
    code = main(["export", "--format", "csv", "--out", str(repo.parent / "cli.csv"), "--root", str(repo), str(path)])
    out, err = capsys.readouterr()
    assert code == 1 and message in out and "nothing written" in err
    assert not (repo.parent / "cli.csv").exists()


def test_a_link_that_points_out_is_refused(repo):
    (repo / "docs" / "link.md").symlink_to(repo.parent / "secret.txt")
    path = page(repo, '--8<-- "docs/link.md"')
    _, problems = validate_paths([path], repo)
    assert [(p.line, p.message) for p in problems if p.file == "docs/ch.md"] == [
        (11, 'embed path "docs/link.md" is a link to a file outside the repository')]
    with pytest.raises(CardProblems):
        export_cards([path], "csv", repo.parent / "x.csv", root=repo)


def test_a_link_that_stays_inside_is_followed(repo):
    (repo / "docs" / "inside.py").symlink_to(repo / "src.py")
    path = page(repo, '```python title="inside"\n--8<-- "docs/inside.py:s"\n```')
    assert validate_paths([path], repo)[1] == []
    export_cards([path], "csv", repo.parent / "x.csv", root=repo)
    assert "x = 1" in (repo.parent / "x.csv").read_text(encoding="utf-8")


def test_an_escape_inside_an_included_file_is_reported_at_the_including_line(repo):
    (repo / "docs" / "table.md").write_text('| a |\n|---|\n\n--8<-- "../secret.txt"\n', encoding="utf-8")
    path = page(repo, '--8<-- "docs/table.md"')
    _, problems = validate_paths([path], repo)
    assert [(p.file, p.line) for p in problems] == [("docs/ch.md", 11)]
    assert "climbs out" in problems[0].message and "included by docs/table.md, line 4" in problems[0].message
    with pytest.raises(CardProblems):
        export_cards([path], "anki", repo.parent / "x.apkg", root=repo)
    assert not (repo.parent / "x.apkg").exists()


def test_expand_refuses_before_reading(repo):
    with pytest.raises(EmbedOutside, match="climbs out"):
        expand("../secret.txt", repo)
    with pytest.raises(EmbedOutside, match="absolute"):
        expand(str(repo.parent / "secret.txt"), repo)
    (repo / "nested.md").write_text('before\n--8<-- "src.py:s"\nafter\n', encoding="utf-8")
    assert expand("nested.md", repo) == "before\nx = 1\nafter"


def test_contained_accepts_dot_dot_that_stays_inside(repo):
    assert contained("docs/../src.py", repo) == (repo / "src.py").resolve()
    with pytest.raises(EmbedOutside):
        contained("C:\\Windows\\win.ini", repo)


def test_snippet_refs_follow_pymdownx_forms():
    lines = ['--8<-- "a.md"', ";--8<-- \"escaped.md\"", "--8<--", "b.md", ";c.md", "", "--8<--", "  --8<-- 'd.py:x'"]
    assert snippet_refs(lines) == [(1, "a.md"), (4, "b.md"), (8, "d.py:x")]
