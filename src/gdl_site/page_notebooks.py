"""Each family page's runnable code as a notebook to download, made at build time.

``docs/families/NAME.md`` becomes ``docs/downloads/notebooks/NAME.ipynb``: a first cell that installs
the exact version of gdl-ref the page was built with (``%pip install gdl-ref==VERSION``, tagged
``install``), then, in page order, every block the test suite runs (a fence whose info string is
exactly ``python``), each under the heading of the card it belongs to. Embedded package code,
shown-not-run blocks and expected output are left out: what the notebook holds is what the tests
run. The blocks are the ones :func:`gdl_site.cards.fences.classify` calls ``run``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gdl_site.cards.fences import Fence, classify, inside_fences

__all__ = ["INSTALL_TAG", "page_notebook", "install_line"]

INSTALL_TAG = "install"
HEADING = re.compile(r"^(#{1,3})\s+(.*?)\s*(\{#[^}]*\})?\s*$")


def install_line(version: str) -> str:
    """The notebook's first cell: the gdl-ref release the page was built and tested with."""
    return f"%pip install gdl-ref=={version}"


def _headings(lines: list[str], fences: list[Fence]) -> list[tuple[int, int, str]]:
    """(0-based line, level, title) of each ATX heading outside ``fences`` (``classify`` of the lines)."""
    inside = inside_fences(fences, len(lines))
    return [(number, len(match.group(1)), match.group(2)) for number, line in enumerate(lines)
            if not inside[number + 1] and (match := HEADING.match(line))]


def page_notebook(page: Path, root: Path, version: str) -> nbformat.NotebookNode | None:
    """The notebook of ``page``'s runnable Python blocks, or None when it has none."""
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(root).as_posix()
    fences = classify(text, name, root)
    blocks = [f for f in fences if f.kind == "run" and f.lang == "python"]
    if not blocks:
        return None
    headings = _headings(text.splitlines(), fences)
    title = next((t for _, level, t in headings if level == 1), page.stem)
    cells = [
        new_markdown_cell(f"# {title}\n\nThe runnable code of the page `{name}` of gdl-ref {version}, in page "
                          "order, one cell per block. Run the first cell once to install that release."),
        new_code_cell(install_line(version), metadata={"tags": [INSTALL_TAG]}),
    ]
    current = None
    for block in blocks:
        above = [h for h in headings if h[0] < block.line - 1 and h[1] >= 2]
        heading = above[-1] if above else None
        if heading and heading != current:
            current = heading
            cells.append(new_markdown_cell(f"{'#' * heading[1]} {heading[2]}"))
        cells.append(new_code_cell(block.code.rstrip("\n")))
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"  # fixed ids: the same page gives the same bytes
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb
