"""The site's Markdown extensions and build step, alone and inside each builder.

A small project in a temporary folder (one page, one package file, the site's extensions, no
hook) is built by MkDocs and by Zensical, to show that a page's math becomes MathML and that a
missing section, an absolute path, a ``..`` escape or a symbolic link out of the project stop
either build with the page's line and no traceback. ``restrict_base_path`` alone is tested for
what it does and does not refuse.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import markdown
import pytest

from conftest import BUILDERS, ROOT
from gdl_site.cards.embeds import EmbedOutside, contained
from gdl_site.embeds import embed_problems
from gdl_site.errors import SiteError
from gdl_site.files import GeneratedFolder, same_content, write_if_changed
from gdl_site.math import render_math
from gdl_site.notebooks import cache_key, package_digest
from gdl_site.prepare import check_embeds

PACKAGE_FILE = """\
def unused():
    pass


# --8<-- [start:square]
def square(x):
    return x * x  # the embedded line
# --8<-- [end:square]
"""
SNIPPETS = {"base_path": ["."], "check_paths": True, "restrict_base_path": True}


def _project(tmp_path: Path, page: str, extensions: bool = True) -> Path:
    """A project folder: mkdocs.yml, docs/index.md holding ``page``, and pkg/mod.py with a section."""
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    (root / "pkg").mkdir()
    (root / "pkg/mod.py").write_text(PACKAGE_FILE, encoding="utf-8")
    (root / "docs/index.md").write_text(page, encoding="utf-8")
    ours = ["gdl_site.math", "gdl_site.embeds"] if extensions else []
    config = {"site_name": "probe", "theme": {"name": "material"},
              "markdown_extensions": [{"pymdownx.arithmatex": {"generic": True}}, *ours, "pymdownx.superfences",
                                      {"pymdownx.snippets": {"base_path": ["."], "check_paths": True}}]}
    (root / "mkdocs.yml").write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is YAML
    return root


def _build(root: Path, builder: str) -> subprocess.CompletedProcess[str]:
    command = ["mkdocs", "build", "--strict"] if builder == "mkdocs" else ["zensical", "build", "--strict"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", *command], cwd=root, capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def _prepare(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gdl_site.prepare"], cwd=root, capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def _convert(text: str, root: Path) -> str:
    md = markdown.Markdown(extensions=["pymdownx.arithmatex", "gdl_site.math", "gdl_site.embeds",
                                       "pymdownx.superfences", "pymdownx.snippets"],
                           extension_configs={"pymdownx.arithmatex": {"generic": True},
                                              "gdl_site.embeds": {"root": str(root)},
                                              "pymdownx.snippets": {**SNIPPETS, "base_path": [str(root)]}})
    return md.convert(text)


# ------------------------------------------------------------------------------------------ the math


def test_math_extension_turns_inline_and_display_tex_into_mathml(tmp_path: Path) -> None:
    html = _convert("A density $p_\\theta(x)$ and\n\n$$\\sum_{n=1}^{N} \\log p(x_n)$$\n", tmp_path)
    assert html.count("<math") == 2 and 'display="block"' in html
    assert "\\theta" not in html and "\\sum" not in html


def test_math_that_will_not_render_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=r"^line 3: math will not render: .*\\frac"):
        _convert("Fine $x$.\n\nBroken $\\frac{1}$ here.\n", tmp_path)


def test_render_math_leaves_text_without_math_alone() -> None:
    html = '<p>No math, and a <span class="other">\\(not arithmatex\\)</span>.</p>'
    assert render_math(html) == html


# ------------------------------------------------------------------------------------------ the embeds


def test_a_section_is_embedded(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    html = _convert('```python\n--8<-- "pkg/mod.py:square"\n```\n', root)
    assert "the embedded line" in html and "unused" not in html


@pytest.mark.parametrize(("ref", "why"), [
    ("pkg/mod.py:cube", r'section "cube" not found in pkg/mod.py'),
    ("pkg/absent.py", r'embedded file "pkg/absent.py" does not exist'),
    ("../outside.txt", r"climbs out of the repository"),
    ("/etc/hostname", r"is absolute"),
    ("pkg/escape.txt", r"a link to a file outside the repository"),  # a symbolic link out of the project
])
def test_embed_problems_name_the_line(tmp_path: Path, ref: str, why: str) -> None:
    root = _project(tmp_path, "")
    (tmp_path / "outside.txt").write_text("secret\n", encoding="utf-8")
    (root / "pkg/escape.txt").symlink_to(tmp_path / "outside.txt")
    page = f'# Page\n\nText.\n\n```python\n--8<-- "{ref}"\n```\n'
    assert [(line, bool(re.search(why, text))) for line, text in embed_problems(page, root)] == [(6, True)]
    with pytest.raises(SiteError, match=rf"^line 6: .*{why}"):
        _convert(page, root)


def test_block_embeds_escaped_lines_and_nested_files_are_checked(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    (root / "docs/part.md").write_text('intro\n\n--8<-- "pkg/mod.py:gone"\n', encoding="utf-8")
    page = '--8<--\npkg/mod.py:square\n/etc/hostname\n--8<--\n\n;--8<-- "/etc/hostname"\n\n--8<-- "docs/part.md"\n'
    problems = embed_problems(page, root)
    assert [line for line, _ in problems] == [3, 8]
    assert "absolute" in problems[0][1] and 'in "docs/part.md", line 3: section "gone"' in problems[1][1]


def test_contained_resolves_inside_the_root(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    assert contained("pkg/../pkg/mod.py", root) == (root / "pkg/mod.py").resolve()
    with pytest.raises(EmbedOutside, match="climbs out"):
        contained("pkg/../../x", root)


def test_restrict_base_path_alone_refuses_dot_dot_and_absolute_but_follows_a_link_out(tmp_path: Path) -> None:
    """What pymdownx.snippets covers by itself: the reason the site adds gdl_site.embeds."""
    from pymdownx.snippets import SnippetMissingError

    root = _project(tmp_path, "")
    (tmp_path / "outside.txt").write_text("secret outside the project\n", encoding="utf-8")
    (root / "pkg/escape.txt").symlink_to(tmp_path / "outside.txt")
    md = lambda: markdown.Markdown(extensions=["pymdownx.snippets"],  # noqa: E731
                                   extension_configs={"pymdownx.snippets": {**SNIPPETS, "base_path": [str(root)]}})
    for ref in ("../outside.txt", str(tmp_path / "outside.txt")):
        with pytest.raises(SnippetMissingError, match="could not be found"):  # refused, but says only this
            md().convert(f'--8<-- "{ref}"\n')
    assert "secret outside the project" in md().convert('--8<-- "pkg/escape.txt"\n')


def test_prepare_names_the_file_and_line_of_every_embed_problem(tmp_path: Path) -> None:
    root = _project(tmp_path, "# Home\n\nNo cards here.\n\n```python\n--8<-- \"pkg/mod.py:cube\"\n```\n")
    (root / "docs/other.md").write_text('--8<-- "../../etc/passwd"\n', encoding="utf-8")
    assert check_embeds(root / "docs", root) == [
        'docs/index.md:6: section "cube" not found in pkg/mod.py (no [start:cube] or [end:cube] marker)',
        'docs/other.md:1: embed path "../../etc/passwd" climbs out of the repository with "..": '
        "an embed names a file inside it",
    ]


# ------------------------------------------------------------------------------------------ in each builder


@pytest.mark.parametrize("builder", BUILDERS)
def test_each_builder_renders_math_and_embeds_with_the_extensions(tmp_path: Path, builder: str) -> None:
    root = _project(tmp_path, '# Home\n\nA density $p_\\theta$.\n\n```python title="pkg/mod.py"\n'
                              '--8<-- "pkg/mod.py:square"\n```\n')
    result = _build(root, builder)
    assert result.returncode == 0, result.stdout + result.stderr
    html = (root / "site/index.html").read_text(encoding="utf-8")
    assert "<math" in html and "\\theta" not in html and "the embedded line" in html


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(("ref", "why"), [("pkg/mod.py:cube", 'section "cube" not found'),
                                          ("../outside.txt", "climbs out of the repository"),
                                          ("/etc/hostname", "is absolute")])
def test_each_documented_build_stops_on_a_bad_embed_with_file_line_and_no_traceback(
        tmp_path: Path, builder: str, ref: str, why: str) -> None:
    """MkDocs: the extension's error, which MkDocs prints as one line after naming the page.
    Zensical: its documented command runs the build step first, which names file and line."""
    page = f'# A page without cards\n\nText.\n\n```python title="x"\n--8<-- "{ref}"\n```\n'
    root = _project(tmp_path, page)
    result = _build(root, "mkdocs") if builder == "mkdocs" else _prepare(root)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "Traceback" not in log, log[-2000:]
    if builder == "mkdocs":
        assert re.search(r"Error (reading|building) page 'index.md'", log) and f"line 6: " in log and why in log, log[-2000:]
    else:
        assert f"docs/index.md:6: " in log and why in log, log[-2000:]
        assert not (root / "site").exists(), "nothing was built"


def test_mkdocs_with_the_site_hook_reports_every_bad_embed_as_file_line(tmp_path: Path) -> None:
    """The repository's own configuration: the hook runs the build step, which checks every page."""
    root = _project(tmp_path, '# Home\n\n```python title="x"\n--8<-- "pkg/mod.py:cube"\n```\n')
    (root / "docs/other.md").write_text('# Other\n\n--8<-- "../outside.txt"\n', encoding="utf-8")
    config = json.loads((root / "mkdocs.yml").read_text(encoding="utf-8"))
    (root / "mkdocs.yml").write_text(json.dumps({**config, "hooks": [str(ROOT / "src/gdl_site/hooks.py")]}),
                                     encoding="utf-8")
    result = _build(root, "mkdocs")
    log = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in log, log[-2000:]
    assert 'docs/index.md:4: section "cube" not found' in log and "docs/other.md:3: embed path" in log, log


def test_zensical_alone_still_fails_on_a_bad_embed_naming_the_line(tmp_path: Path) -> None:
    """Without the build step, Zensical still stops: it prints the extension's error, with the
    line, inside its own traceback and without the page's name (how Zensical 0.0.x reports a
    Python error; the documented command runs the step first for that reason)."""
    page = '# Page\n\n```python title="x"\n--8<-- "pkg/mod.py:cube"\n```\n'
    result = _build(_project(tmp_path, page), "zensical")
    assert result.returncode != 0 and 'line 4: section "cube" not found' in result.stdout + result.stderr


@pytest.mark.parametrize("builder", BUILDERS)
def test_without_the_embeds_extension_a_missing_section_still_fails(tmp_path: Path, builder: str) -> None:
    """check_paths alone fails the build too (with less to say): the site never passes on a bad embed."""
    page = '# Page\n\n```python title="x"\n--8<-- "pkg/mod.py:cube"\n```\n'
    result = _build(_project(tmp_path, page, extensions=False), builder)
    assert result.returncode != 0 and "could not be located" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ build files


def test_generated_folder_writes_only_changes_and_removes_only_its_own_stale_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("a reader's file\n", encoding="utf-8")
    with GeneratedFolder(tmp_path) as folder:
        folder.write("a.txt", "one")
        folder.write("sub/b.txt", "two")
    stamp = (tmp_path / "a.txt").stat().st_mtime_ns
    with GeneratedFolder(tmp_path) as folder:
        folder.write("a.txt", "one")
    assert (tmp_path / "a.txt").stat().st_mtime_ns == stamp, "unchanged content is not rewritten"
    assert not (tmp_path / "sub").exists(), "the file it no longer makes is removed"
    assert (tmp_path / "mine.txt").read_text(encoding="utf-8") == "a reader's file\n", "other files are left alone"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".generated", "a.txt", "mine.txt"], "no temporary file left"
    assert write_if_changed(tmp_path / "a.txt", b"three") and (tmp_path / "a.txt").read_bytes() == b"three"


def test_notebook_cache_key_follows_the_notebook_and_the_package(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("x = 1\n", encoding="utf-8")
    notebook = tmp_path / "n.ipynb"
    notebook.write_text('{"cells": []}', encoding="utf-8")
    first = cache_key(notebook, package_digest(package))
    assert cache_key(notebook, package_digest(package)) == first
    (package / "mod.py").write_text("x = 2\n", encoding="utf-8")
    second = cache_key(notebook, package_digest(package))
    assert second != first, "a change to the package re-executes the notebook"
    notebook.write_text('{"cells": [], "x": 1}', encoding="utf-8")
    assert cache_key(notebook, package_digest(package)) not in {first, second}
    before = package_digest(package)
    (package / "new.py").write_text("", encoding="utf-8")
    assert package_digest(package) != before, "a new module counts"
    (package / "sub").mkdir()
    (package / "sub" / "deep.py").write_text("y = 1\n", encoding="utf-8")
    assert package_digest(package) != before, "a module in a subpackage counts"


def test_a_rebuilt_deck_with_the_same_notes_is_not_rewritten() -> None:
    """A deck is a zip whose entries carry the time they were written: equal members mean equal decks,
    so `mkdocs serve` does not rebuild forever on a deck that did not change."""
    import io
    import zipfile

    def archive(date: tuple[int, ...], body: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as out:
            out.writestr(zipfile.ZipInfo("collection.anki2", date_time=date), body)
        return buffer.getvalue()

    first, later = archive((2020, 1, 1, 0, 0, 0), b"notes"), archive((2026, 5, 5, 5, 5, 4), b"notes")
    assert first != later and same_content(first, later)
    assert not same_content(first, archive((2020, 1, 1, 0, 0, 0), b"other notes"))
    assert not same_content(b"PK not a zip", b"PK not a zip either")


def test_the_build_step_leaves_no_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from gdl_site.prepare import prepare

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    root = _project(tmp_path, "# Probe\n\n## A probe card {#probe-card}\n\nA page needs a card for a deck.\n\n"
                              '??? question "What does the build step leave behind?"\n\n'
                              "    Its downloads, and no temporary folder.\n")
    shutil.copy(ROOT / "package-lock.json", root)   # the Study page's scheduler, as npm ci installed it
    for name in ("package.json", "dist/index.umd.js"):
        source = ROOT / "node_modules/ts-fsrs" / name
        if not source.is_file():
            pytest.fail(f"{source.relative_to(ROOT)} is missing: run `npm ci` in the repository root")
        (root / "node_modules/ts-fsrs" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "node_modules/ts-fsrs" / name)
    done = prepare(root, quiet=True)
    assert sorted(p.name for p in (root / "docs/downloads").iterdir()) == [
        ".generated", "gdl-ref-crowdanki.zip", "gdl-ref.apkg", "gdl-ref.csv", "study"], done
    assert not (root / "cards.lock.json").exists(), "a build never writes the GUID lock file"
    assert list(scratch.iterdir()) == [], "the export's scratch folder is removed"
