"""The notebooks the site offers: a family page's notebook runs, and a notebook page shows its outputs,
as the Markdown page Zensical builds and as the notebook mkdocs-jupyter renders under MkDocs.

The family notebook is executed with nbclient in a fresh kernel, without its install cell (the
package under test is already importable): every cell must run, and a cell whose block the page
follows with an expected output must print exactly that output, as pytest-codeblocks requires of
the page itself.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT
from gdl_ref import __version__
from gdl_site.cards.fences import classify
from gdl_site.errors import SiteError
from gdl_site.files import GeneratedFolder
from gdl_site.notebooks import notebook_markdown, page_copy, page_link
from gdl_site.page_notebooks import INSTALL_TAG, install_line, page_notebook

PAGE = ROOT / "docs/families/generative-vs-discriminative.md"


def _expected_outputs(text: str) -> dict[str, str]:
    """Each runnable block's code -> the expected output the page shows after it."""
    fences = classify(text, PAGE.name, ROOT)
    return {block.code.rstrip("\n"): after.code for block, after in zip(fences, fences[1:])
            if block.kind == "run" and after.kind == "output"}


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream" and out.name == "stdout")


@pytest.mark.slow
def test_a_generated_family_notebook_runs_and_prints_what_the_page_shows(tmp_path) -> None:
    nb = page_notebook(PAGE, ROOT, __version__)
    assert nb is not None
    install = nb.cells[1]
    assert install.source == install_line(__version__) == f"%pip install gdl-ref=={__version__}"
    assert INSTALL_TAG in install.metadata["tags"]
    nb.cells = [cell for cell in nb.cells if INSTALL_TAG not in cell.metadata.get("tags", [])]
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    expected = _expected_outputs(PAGE.read_text(encoding="utf-8"))
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    checked = 0
    for cell in code_cells:
        assert not any(out.output_type == "error" for out in cell.outputs), cell.source[:80]
        if cell.source in expected:
            assert " ".join(_stdout(cell).split()) == " ".join(expected[cell.source].split()), cell.source[:80]
            checked += 1
    assert checked >= 3, f"only {checked} cells had an expected output to compare"


def test_a_family_page_without_runnable_blocks_gets_no_notebook(tmp_path) -> None:
    page = tmp_path / "docs/families/empty.md"
    page.parent.mkdir(parents=True)
    page.write_text("# Empty\n\n```text\nnot code\n```\n", encoding="utf-8")
    assert page_notebook(page, tmp_path, "9.9") is None


def test_notebook_page_writes_figures_and_text_and_refuses_stderr(tmp_path) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\nSome $x$."),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
        nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output("display_data", data={"image/png": png})]),
    ])
    with GeneratedFolder(tmp_path) as folder:
        page = notebook_markdown(nb, "probe", folder, "notebooks/probe.ipynb")
    assert page.startswith("# Title\n\nSome $x$.")
    assert "```text\n1\n```" in page and "](probe_files/cell3-1.png)" in page
    assert (tmp_path / "probe_files/cell3-1.png").read_bytes()[:4] == b"\x89PNG"
    assert '<div class="language-python highlight">' in page and "```python" not in page
    nb.cells[1].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="UserWarning: x\n"))
    with pytest.raises(SiteError, match=r"^notebooks/probe.ipynb: cell 2 wrote to stderr: UserWarning"):
        with GeneratedFolder(tmp_path / "again") as folder:
            notebook_markdown(nb, "probe", folder, "notebooks/probe.ipynb")


# ------------------------------------------------------------------ the page mkdocs-jupyter renders (MkDocs)


def _probe_notebook() -> nbformat.NotebookNode:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Probe\n\nFor the [VAE chapter](../families/vae.md#loss), with $p(x \\mid z)$."),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
        nbformat.v4.new_markdown_cell("## Display\n\n$$\\sum_{n=1}^{N} \\log p(x_n)$$\n\nCode `$HOME` is not math."),
        nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output("display_data", data={"image/png": png})]),
    ], metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})


@pytest.mark.parametrize(("target", "seen"), [
    ("../families/vae.md", "../../families/vae/"),
    ("../families/vae.md#the-bound", "../../families/vae/#the-bound"),
    ("../index.md", "../../"),
    ("../guide/index.md", "../../guide/"),
    ("probe.ipynb", "../probe.ipynb"),
    ("probe_files/cell3-1.png", "../probe_files/cell3-1.png"),
    ("https://example.org/a.md", "https://example.org/a.md"),
    ("#section", "#section"),
])
def test_page_links_are_written_for_the_page_address(target: str, seen: str) -> None:
    assert page_link(target, "probe") == seen


def test_the_page_copy_has_the_lead_mathml_page_links_and_figure_files() -> None:
    nb = _probe_notebook()
    page = page_copy(nb, "probe", "[Download this notebook](probe.ipynb) (executed)", ROOT, "notebooks/probe.ipynb")
    first, display = page.cells[0].source, page.cells[2].source
    assert first.startswith("# Probe\n\n[Download this notebook](../probe.ipynb) (executed)\n\nFor the")
    assert "](../../families/vae/#loss)" in first
    assert first.count("<math") == 1 and "$" not in first and '<span class="arithmatex"><math' in first
    assert re.search(r'^<div class="arithmatex"><math [^>]*display="block"', display, re.M) and "`$HOME`" in display
    figure = page.cells[3].outputs[0]
    assert figure.metadata["filenames"] == {"image/png": "../probe_files/cell4-1.png"}
    assert figure.metadata["alt"] == "Figure 1: the output of cell 4"
    assert nb.cells[0].source.startswith("# Probe\n\nFor the"), "the executed notebook itself is left alone"
    nbformat.validate(page)


def test_the_plugin_renders_the_copy_and_the_hook_leaves_nothing_that_leaves_the_site(tmp_path) -> None:
    convert = pytest.importorskip("mkdocs_jupyter.convert")
    from gdl_site.hooks import _figure_texts, notebook_html

    source = tmp_path / "probe.ipynb"
    page = page_copy(_probe_notebook(), "probe", "[Download](probe.ipynb)", ROOT, "notebooks/probe.ipynb")
    source.write_text(nbformat.writes(page), encoding="utf-8")
    rendered = convert.nb2html(str(source), execute=False, include_requirejs=False, custom_mathjax_url="")
    assert "text/x-mathjax-config" in rendered and "mermaid.esm" in rendered, "what the template adds (if not: simplify the hook)"
    html, css = notebook_html(rendered, _figure_texts(str(source)))
    assert "<style" not in html and ".jupyter-wrapper" in css and "data-md-color-scheme=slate" in css, "dark mode"
    assert '<div class="jupyter-wrapper">' in html and len(re.findall(r"<clipboard-copy\b", html)) == 2
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" not in tag for tag in scripts), scripts
    assert "mathjax" not in html.lower().replace("end of mathjax configuration", "")
    assert "cdnjs" not in html and "mermaid.esm" not in html
    assert re.findall(r"<img\b[^>]*>", html) == ['<img alt="Figure 1: the output of cell 4" class="" src="../probe_files/cell4-1.png"/>']
    assert html.count("<math") == 2 and 'href="../../families/vae/#loss"' in html and 'href="../probe.ipynb"' in html
