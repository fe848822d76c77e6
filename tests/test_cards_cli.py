"""`gdl-ref cards check|import|export`: exit codes and messages, never a traceback."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from gdl_site.cards.cli import add_parser, main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "cards_corpus"
FLASHCARDS = "# Flashcards: Tiny\n\n---\n\n#### First card\nBackground $x $.\n\n:p Why?\n??x\nBecause.\nx??\n\n---\n"


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_parser_registers_the_subcommands():
    parser = argparse.ArgumentParser(prog="gdl-ref")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cards", "check", "docs/x.md"])
    assert args.paths == ["docs/x.md"] and callable(args.func)
    args = parser.parse_args(["cards", "export", "--format", "csv", "--out", "x.csv"])
    assert (args.format, args.out, args.paths) == ("csv", "x.csv", ["docs"])
    assert parser.parse_args(["cards", "import", "f.txt", "--chapter", "C"]).chapter == "C"


def test_check_lists_every_problem(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(["check", "tests/cards_corpus/math.md", "tests/cards_corpus/two_questions.md"], capsys)
    expected = (CORPUS / "math.expected").read_text() + (CORPUS / "two_questions.expected").read_text()
    assert code == 1 and out == expected
    assert err == "6 problems in 2 pages (2 card pages, 2 cards)\n"


def test_check_ok(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(["check", "tests/cards_corpus/good_card.md"], capsys)
    assert code == 0 and out == "ok: 0 problems in 1 pages (1 card pages, 2 cards)\n"


def test_check_missing_path(capsys):
    code, _, err = run(["check", "no/such/page.md"], capsys)
    assert code == 1 and err == "gdl-ref cards check: error: no/such/page.md: no such file or folder\n"


def test_import_then_check_then_export(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.txt").write_text(FLASHCARDS)
    code, _, err = run(["import", "tiny.txt", "--chapter", "Tiny", "--out", "docs/tiny.md"], capsys)
    assert code == 0 and err == "imported 1 cards from tiny.txt into docs/tiny.md; next: gdl-ref cards check docs/tiny.md\n"
    assert "## First card {#first-card}\n\nBackground $x$.\n" in (tmp_path / "docs" / "tiny.md").read_text()
    assert run(["check"], capsys)[0] == 0
    code, _, err = run(["import", "tiny.txt", "--out", "docs/tiny.md"], capsys)
    assert code == 1 and "docs/tiny.md exists: pass --force" in err
    code, out, _ = run(["export", "--format", "flashcards", "--out", "back.txt"], capsys)
    assert code == 0 and out == "wrote 1 cards to back.txt (flashcards)\n"
    assert (tmp_path / "back.txt").read_text().startswith("# Flashcards: Tiny\n\n---\n\n#### First card {#first-card}\n")


def test_import_to_stdout_and_refusals(tmp_path, capsys):
    source = tmp_path / "tiny.txt"
    source.write_text(FLASHCARDS)
    code, out, _ = run(["import", str(source), "--root", str(tmp_path)], capsys)
    assert code == 0 and out.startswith("# Tiny\n\n## First card {#first-card}\n")
    (tmp_path / "prose.txt").write_text("Nothing to see.\n")
    code, _, err = run(["import", str(tmp_path / "prose.txt"), "--chapter", "X"], capsys)
    assert code == 1 and "no flashcards found" in err
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x01")
    code, _, err = run(["import", str(tmp_path / "binary.txt"), "--chapter", "X"], capsys)
    assert code == 1 and "is not UTF-8 text" in err


def test_export_refuses_malformed_cards(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(["export", "--format", "anki", "--out", str(tmp_path / "d.apkg"),
                          "tests/cards_corpus/empty_background.md"], capsys)
    assert code == 1 and out == (CORPUS / "empty_background.expected").read_text()
    assert "nothing written" in err and not (tmp_path / "d.apkg").exists()


def test_internal_error_is_one_line(tmp_path, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")
    monkeypatch.setattr("gdl_site.cards.validate.validate_paths", boom)
    monkeypatch.delenv("GDL_REF_DEBUG", raising=False)
    code, _, err = run(["check", str(tmp_path)], capsys)
    assert code == 1 and err.startswith("gdl-ref cards check: internal error: RuntimeError: unexpected")
    assert err.count("\n") == 1, err


def test_no_subcommand_is_a_usage_error(capsys):
    code, _, err = run([], capsys)
    assert code == 2 and "{check,import,export,lock,retire}" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv", [["check", "tests/cards_corpus/no_answer.md"]])
def test_python_dash_m(argv):
    result = subprocess.run([sys.executable, "-m", "gdl_site.cards", *argv], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == (CORPUS / "no_answer.expected").read_text()
    assert "Traceback" not in result.stderr


def test_gdl_ref_command_runs_cards(capsys, monkeypatch):
    from gdl_ref.cli import main as gdl_ref_main

    monkeypatch.chdir(ROOT)
    assert gdl_ref_main(["cards", "check", "tests/cards_corpus/no_answer.md"]) == 1
    assert capsys.readouterr().out == (CORPUS / "no_answer.expected").read_text()
    assert gdl_ref_main(["cards", "check", "tests/cards_corpus/good_card.md"]) == 0
