"""CONTRIBUTING.md: its code runs as printed, its template is the package's, its checklist is the PR's."""

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest
from pytest_codeblocks.main import extract_from_file

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"
with warnings.catch_warnings():  # pytest-codeblocks calls its own skip marker deprecated; pages use it
    warnings.simplefilter("ignore", DeprecationWarning)
    BLOCKS = extract_from_file(GUIDE)


def _skipped(block) -> bool:
    return any("skip" in mark for mark in block.marks)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.syntax == "python" and not _skipped(b)],
                         ids=lambda b: f"line {b.lineno}")
def test_python_blocks_print_what_the_guide_shows(block, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.code, f"CONTRIBUTING.md:{block.lineno}", "exec"), {"__name__": "contributing"})
    assert block.expected_output is not None, "each block in the guide shows its output"
    assert out.getvalue() == block.expected_output


def test_shell_blocks_are_all_shown_not_run():
    shell = [b for b in BLOCKS if b.syntax in {"bash", "sh"}]
    assert shell and all(_skipped(b) for b in shell)


def test_template_in_the_guide_is_the_packages():
    template = (ROOT / "src" / "gdl_site" / "templates" / "card.md").read_text(encoding="utf-8")
    shown = re.search(r"````markdown\n(.*?)````\n", GUIDE.read_text(encoding="utf-8"), re.S).group(1)
    assert shown == template


def test_checklists_match():
    def items(path: Path) -> list[str]:
        text = re.sub(r"\n[ \t]+", " ", path.read_text(encoding="utf-8"))
        return [line for line in text.splitlines() if line.startswith("- [ ]")]
    assert items(GUIDE) == items(ROOT / ".github" / "PULL_REQUEST_TEMPLATE.md")
    assert items(GUIDE), "the guide has a checklist"
