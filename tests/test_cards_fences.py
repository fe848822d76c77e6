"""The fence classifier on small pages: kinds, and the message for each bad fence."""

from pathlib import Path

import pytest

from gdl_site.cards.fences import classify, fence_problems, inside_fences
from gdl_site.page_notebooks import _headings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("# --8<-- [start:core]\nx = 1\n# --8<-- [end:core]\n")
    return tmp_path


def kinds(text: str, root: Path = Path(".")) -> list[str]:
    return [f.kind for f in classify(text, "p.md", root)]


def test_run_output_other():
    text = ("```python\nprint(1)\n```\n\n<!--pytest-codeblocks:expected-output-->\n\n```text\n1\n```\n\n"
            "```yaml\na: 1\n```\n\n```bash\necho hi\n```\n")
    assert kinds(text) == ["run", "output", "other", "run"]


@pytest.mark.parametrize("info", ["py", "python3", "pycon", 'python title="a.py"', "python {.x}", "shell"])
def test_only_exact_info_strings_run(info):
    (fence,) = classify(f"```{info}\nx = 1\n```\n", "p.md")
    assert fence.kind == "untested"
    assert fence.problems == [
        f"no test runs this fence (```{info}): pytest-codeblocks runs only ```python, ```sh or ```bash "
        "exactly; run it, mark it skipped with a reason, or embed package code with --8<--"]


def test_tilde_fence_is_not_collected():
    assert kinds("~~~python\nx = 1\n~~~\n") == ["untested"]


def test_indented_fence_in_admonition_runs():
    fences = classify('??? question "Q?"\n\n    Answer.\n\n    ```python\n    print(2)\n    ```\n', "p.md")
    assert [(f.kind, f.line, f.body) for f in fences] == [("run", 5, ["print(2)"])]


def test_embed_resolves(root):
    ok = '```python title="src/m.py"\n--8<-- "src/m.py:core"\n```\n'
    (fence,) = classify(ok, "p.md", root)
    assert (fence.kind, fence.refs, fence.problems) == ("embed", ["src/m.py:core"], [])


def test_embed_problems(root):
    text = ('```python title="src/m.py"\n--8<-- "src/m.py:nope"\n```\n\n'
            '```python title="x"\n--8<-- "src/gone.py:core"\n```\n\n'
            '```python\n--8<-- "src/m.py:core"\n```\n')
    assert fence_problems(classify(text, "p.md", root)) == [
        'p.md:2: section "nope" not found in src/m.py (no [start:nope] or [end:nope] marker)',
        'p.md:6: embedded file "src/gone.py" does not exist',
        'p.md:9: pytest-codeblocks runs this fence and fails on the --8<-- line: give it a title, '
        'e.g. ```python title="src/gdl_ref/x.py"',
    ]


def test_skip_needs_a_reason():
    bare = "<!--pytest.mark.skip-->\n```bash\ncurl x\n```\n"
    (fence,) = classify(bare, "p.md")
    assert fence.kind == "skipped"
    assert fence_problems([fence]) == [
        "p.md:2: skipped fence with no reason: write *Not run here: <reason>* directly above "
        "the skip marker or directly below the fence"]


@pytest.mark.parametrize("text", [
    "*Not run here: downloads MNIST.*\n\n<!--pytest.mark.skip-->\n```bash\ncurl x\n```\n",
    "<!--pytest.mark.skip-->\n```bash\ncurl x\n```\n\n*Not run here: needs a network.*\n",
    "*Not run here: needs a GPU.*\n<!--pytest.mark.skip-->\n```python\nimport torch\n```\n",
    '    *Not run here: needs a GPU.*\n\n    <!--pytest.mark.skipif(True, reason="no GPU")-->\n    ```python\n    x\n    ```\n',
])
def test_skip_with_reason(text):
    (fence,) = classify(text, "p.md")
    assert (fence.kind, fence.problems) == ("skipped", [])


def test_reason_must_be_adjacent():
    text = "*Not run here: far away.*\n\nA paragraph.\n\n<!--pytest.mark.skip-->\n```sh\nx\n```\n\nMore.\n"
    (fence,) = classify(text, "p.md")
    assert fence.problems and "no reason" in fence.problems[0]


def test_marker_applies_to_next_fence_only():
    text = "*Not run here: r.*\n<!--pytest.mark.skip-->\n```sh\nx\n```\n\n```sh\ny\n```\n"
    assert kinds(text) == ["skipped", "run"]


def test_marker_must_be_on_its_own_line():
    text = "Text <!--pytest-codeblocks:skip--> here.\n```bash\nx\n```\n"
    fences = classify(text, "p.md")
    assert [f.kind for f in fences] == ["marker", "run"]
    assert fence_problems(fences) == [
        "p.md:1: a pytest-codeblocks marker counts only on a line of its own; this one is ignored"]


def test_marker_named_in_inline_code_is_fine():
    assert fence_problems(classify("Write `<!--pytest-codeblocks:skip-->` before it.\n", "p.md")) == []


def test_unknown_keyword_and_unclosed_fence():
    text = "<!--pytest-codeblocks:skpi-->\n```python\nx = 1\n"
    assert fence_problems(classify(text, "p.md")) == [
        'p.md:1: unknown pytest-codeblocks keyword "skpi" (pytest fails to collect the page)',
        "p.md:2: fence never closed (pytest fails to collect the page)",
    ]


def test_expected_output_after_a_fence_that_does_not_run():
    text = "```text\na\n```\n<!--pytest-codeblocks:expected-output-->\n```text\na\n```\n"
    assert fence_problems(classify(text, "p.md")) == [
        "p.md:5: expected-output block does not follow a fence that runs "
        "(the fence before it is not ```python, ```sh or ```bash)"]


def test_cont_joins_the_block_before():
    text = "```python\nx = 1\n```\n<!--pytest-codeblocks:cont-->\n```python\nprint(x)\n```\n"
    assert kinds(text) == ["run", "run"]


def test_snippet_line_among_code():
    text = '```python\nimport torch\n--8<-- "src/m.py:core"\n```\n'
    (fence,) = classify(text, "p.md")
    assert fence.kind == "run" and "does not expand it" in fence.problems[0]


def test_longer_fence_holds_a_shorter_one():
    text = "````markdown\n```python\nx\n```\n````\n"
    assert kinds(text) == ["other"]


def test_reason_may_wrap_over_lines():
    text = ("    *Not run here: it needs Docker, a network and the\n    book's repository.*\n\n"
            "    <!--pytest.mark.skip(reason='needs Docker')-->\n\n    ```bash\n    docker compose up\n    ```\n")
    (fence,) = classify(text, "p.md")
    assert (fence.kind, fence.problems) == ("skipped", [])


@pytest.mark.parametrize("marker", ["skip", "skipif(True)"])
def test_deprecated_skip_keyword_is_reported(marker):
    text = f"*Not run here: r.*\n\n<!--pytest-codeblocks:{marker}-->\n```bash\nx\n```\n"
    problems = fence_problems(classify(text, "p.md"))
    assert any(f"p.md:3: <!--pytest-codeblocks:{marker}--> is deprecated" in str(p) for p in problems), problems


def test_cards_check_and_the_build_step_report_an_embed_at_the_same_line(tmp_path):
    from gdl_site.cards.validate import validate_paths
    from gdl_site.prepare import check_embeds

    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "p.md"
    page.write_text('# T\n\nText.\n\n```python title="x"\n--8<-- "src/none.py:sec"\n```\n',
                    encoding="utf-8")
    _, problems = validate_paths([page], tmp_path)
    checked = [str(p) for p in problems if "does not exist" in str(p)]
    built = check_embeds(tmp_path / "docs", tmp_path)
    assert checked == built == ['docs/p.md:6: embedded file "src/none.py" does not exist']


def test_inside_fences_marks_each_fence_line_and_nothing_else():
    text = ("# Title\n```python\nx = 1\n```\n````text\n```\n# not a heading\n````\n"
            "<!--pytest-codeblocks:bogus-->\ntext ```inline``` here\n~~~\nnever closed\n")
    lines = text.splitlines()
    inside = inside_fences(classify(text), len(lines))
    assert len(inside) == len(lines) + 2 and not inside[0] and not inside[-1]
    assert [k for k in range(1, len(lines) + 1) if inside[k]] == [2, 3, 4, 5, 6, 7, 8, 11, 12]


def test_headings_of_a_notebook_skip_those_inside_fences():
    text = "# Page\n\n```text\n# a comment\n```\n\n## Part\n~~~~\n### not one\n~~~~\n"
    lines = text.splitlines()
    assert _headings(lines, classify(text)) == [(0, 1, "Page"), (6, 2, "Part")]
