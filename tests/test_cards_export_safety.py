"""Exports lose nothing and leak nothing: no silent overwrite, no half-written file, no formula cells,
no "wrote 0 cards" for a page that cannot be read, ids checked against the whole site."""

import csv
from pathlib import Path

import pytest

import gdl_site.cards.export as export
from gdl_site.cards.cli import main
from gdl_site.cards.export import CardProblems, csv_cell, export_cards

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "cards_corpus" / "good_card.md"


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_export_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "mine.csv"
    out.write_text("a file of my own\n", encoding="utf-8")
    code, stdout, err = run(["export", "--format", "csv", "--out", str(out), "--root", str(ROOT), str(GOOD)], capsys)
    assert code == 1 and err == f"gdl-ref cards export: error: {out} exists: pass --force to overwrite it\n"
    assert out.read_text(encoding="utf-8") == "a file of my own\n"
    code, stdout, _ = run(["export", "--format", "csv", "--out", str(out), "--force", "--root", str(ROOT), str(GOOD)],
                          capsys)
    assert code == 0 and stdout == f"wrote 2 cards to {out} (csv)\n"
    assert out.read_text(encoding="utf-8").startswith("key,chapter,id,")


def test_a_failure_midway_leaves_the_earlier_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "cards.csv"
    export_cards([GOOD], "csv", out, root=ROOT)
    before = out.read_bytes()

    def half_then_fail(cards, target, root):
        target.write_text("key,chap", encoding="utf-8")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export, "write_csv", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export_cards([GOOD], "csv", out, root=ROOT, force=True)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv"]


@pytest.mark.parametrize("text, shown", [("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
                                         ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
                                         ("\tx", "'\tx"), ("\rx", "'\rx"), ("a = b", "a = b"), ("", "")])
def test_csv_cell_guard(text, shown):
    assert csv_cell(text) == shown


def test_csv_export_guards_every_cell(tmp_path):
    page = tmp_path / "docs" / "formulas.md"
    page.parent.mkdir()
    page.write_text('# =cmd|\' /C calc\'!A0\n\n## @SUM(1) {#formula-card}\n\n-2+3 starts the background.\n\n'
                    '??? question "=1+1?"\n\n    +A1\n', encoding="utf-8")
    out = tmp_path / "cards.csv"
    export_cards([page], "csv", out, root=tmp_path)
    (row,) = csv.DictReader(out.open(encoding="utf-8", newline=""))
    assert (row["chapter"], row["title"], row["background"], row["question"], row["answer"]) == (
        "'=cmd|' /C calc'!A0", "'@SUM(1)", "'-2+3 starts the background.", "'=1+1?", "'+A1")
    assert not any(v.startswith(export.FORMULA_STARTS) for v in row.values())


def test_a_page_that_cannot_be_read_is_an_error_naming_it(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin1.md").write_bytes("# Caf\xe9\n\n## A {#a}\n".encode("latin-1"))
    code, out, err = run(["export", "--format", "csv", "--out", str(tmp_path / "x.csv"), "--root", str(tmp_path),
                          str(docs / "latin1.md")], capsys)
    assert code == 1 and out == "docs/latin1.md:1: not UTF-8 text: invalid continuation byte at byte 5\n"
    assert "nothing written" in err and not (tmp_path / "x.csv").exists()
    (docs / "latin1.md").unlink()
    (docs / "folder.md").mkdir()
    with pytest.raises(CardProblems, match=r"docs/folder.md:1: cannot be read: Is a directory"):
        export_cards([docs], "csv", tmp_path / "x.csv", root=tmp_path)


def test_no_cards_is_an_error_not_wrote_0(tmp_path, capsys):
    (tmp_path / "guide.md").write_text("# Guide\n\nNo cards.\n", encoding="utf-8")
    code, out, err = run(["export", "--format", "anki", "--out", str(tmp_path / "d.apkg"), "--root", str(tmp_path),
                          str(tmp_path / "guide.md")], capsys)
    assert code == 1 and out.startswith(f"{tmp_path / 'guide.md'}: no cards here") and "wrote" not in out
    assert not (tmp_path / "d.apkg").exists()


def test_checking_one_page_sees_the_ids_of_the_whole_site(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs" / "a").mkdir(parents=True)
    card = "# {t}\n\n## Card {{#{id}}}\n\nBackground.\n\n??? question \"Q?\"\n\n    A.\n"
    (tmp_path / "docs" / "a" / "first.md").write_text(card.format(t="First", id="shared"), encoding="utf-8")
    (tmp_path / "docs" / "second.md").write_text(card.format(t="Second", id="shared"), encoding="utf-8")
    code, out, _ = run(["check", "docs/second.md"], capsys)
    assert code == 1 and out == ('docs/second.md:3: duplicate id "shared": also at docs/a/first.md:3; '
                                 "ids are unique across the site\n")
    assert run(["check", "docs/second.md", "--alone"], capsys)[0] == 0
    code, out, _ = run(["check"], capsys)   # the whole site: reported once, at the second
    assert code == 1 and out.count("duplicate id") == 1
