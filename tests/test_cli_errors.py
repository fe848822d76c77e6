"""One error convention for gdl-ref, gdl-ref cards and gdl-ref bench (gdl_ref.cli_errors).

A usage error exits 2 with one stderr line naming the argument; any other error exits 1 with one line
naming the file; GDL_REF_DEBUG=1 prints the traceback first.
"""

from __future__ import annotations

import pytest

from gdl_ref import cli
from gdl_ref.cli_errors import ArgumentParser, Failure, UsageError, fail, guard, run_main


@pytest.fixture(autouse=True)
def no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GDL_REF_DEBUG", raising=False)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv, prog", [
    (["evaluate", "x", "--frobnicate"], "gdl-ref evaluate"),
    (["cards", "check", "--frobnicate"], "gdl-ref cards check"),
    (["bench", "flow", "--frobnicate"], "gdl-ref bench"),
])
def test_an_unknown_option_is_one_line_naming_it_and_exit_2(capsys, argv: list[str], prog: str) -> None:
    assert cli.main(argv) == 2
    lines = _lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: unrecognized arguments: --frobnicate; valid options: "), lines


@pytest.mark.parametrize("argv, message", [
    (["sample", "x", "--n", "many", "--out", "s.npy"], "gdl-ref sample: error: argument --n: invalid int value"),
    (["cards", "export", "--out", "x.csv"], "gdl-ref cards export: error: the following arguments are required: "
                                            "--format"),
    (["bench", "flow", "--seeds", "zero"], "gdl-ref bench: error: argument --seeds: invalid int value"),
    (["bench", "flow", "--budget-steps", "0"], "gdl-ref bench: error: argument --budget-steps: must be positive"),
    (["bench", "nosuchfamily"], "gdl-ref bench: error: argument FAMILY: unknown family 'nosuchfamily'"),
    (["cards"], "gdl-ref cards: error: the following arguments are required: {check,import,export,lock,retire}"),
])
def test_a_bad_or_missing_value_is_one_line_naming_the_argument(capsys, argv: list[str], message: str) -> None:
    assert cli.main(argv) == 2
    lines = _lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(message), lines


def _runtime_errors(tmp_path):
    """Commands that fail on a file: (argv, the command's name, the path its one line must name)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "results").mkdir()
    return [(["evaluate", str(tmp_path / "empty")], "gdl-ref evaluate", tmp_path / "empty"),
            (["cards", "check", str(tmp_path / "missing.md")], "gdl-ref cards check", tmp_path / "missing.md"),
            (["bench", "flow", "--budget-steps", "1", "--json", str(tmp_path / "results")], "gdl-ref bench",
             tmp_path / "results")]


def test_a_runtime_error_is_one_line_naming_the_file_and_exit_1(tmp_path, capsys) -> None:
    for argv, prog, path in _runtime_errors(tmp_path):
        assert cli.main(argv) == 1, argv
        lines = _lines(capsys)
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and str(path) in lines[0], (argv, lines)


def test_gdl_ref_debug_prints_the_traceback(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GDL_REF_DEBUG", "1")
    for argv, _, path in _runtime_errors(tmp_path):
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last)"), err
        assert str(path) in err.strip().splitlines()[-1]


def test_an_internal_error_is_one_line_or_its_traceback(tmp_path, capsys, monkeypatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("gdl_site.cards.validate.validate_paths", boom)
    assert cli.main(["cards", "check", str(tmp_path)]) == 1
    assert _lines(capsys) == ["gdl-ref cards check: internal error: RuntimeError: unexpected "
                              "(set GDL_REF_DEBUG=1 for the traceback)"]
    monkeypatch.setenv("GDL_REF_DEBUG", "1")
    assert cli.main(["cards", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: unexpected" in err


def test_the_pieces() -> None:
    """guard maps UsageError to 2, Failure to 1, a return value to itself; run_main returns 0 on --help."""
    def raising(error: Exception) -> int:
        raise error

    assert guard("p", raising, UsageError("argument X: bad")) == 2
    assert guard("p", raising, Failure("f.txt: bad")) == 1
    assert guard("p", lambda: 7) == 7
    with pytest.raises(Failure, match="f.txt:3: bad"):
        fail("f.txt:3: bad")
    parser = ArgumentParser(prog="p")
    parser.set_defaults(func=lambda args: 0)
    assert run_main(parser, ["--help"]) == 0
