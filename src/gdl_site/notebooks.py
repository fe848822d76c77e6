"""The notebooks as site pages: executed once per change, shown with their figures by either builder.

Each ``notebooks/NAME.ipynb`` of the repository is executed top to bottom with nbclient, once, and
written as

* ``docs/notebooks/NAME.md``: the page Zensical builds (it runs no MkDocs plugin): the Markdown
  cells as they are (their math goes through the same ``gdl_site.math`` extension as every
  page), each code cell highlighted, each output as text or a figure;
* ``docs/notebooks/NAME_files/``: the figures, PNG or SVG, which both builders' pages show;
* ``docs/notebooks/NAME.ipynb``: the executed notebook, offered as a download;
* ``.cache/notebook-pages/NAME.ipynb`` (:data:`PAGE_COPIES`): the page MkDocs builds, rendered by
  mkdocs-jupyter with ``execute: false``: the executed notebook with the same lead line as the
  Markdown page, its math already MathML (the site loads no MathJax), its links written for the
  page's address ``notebooks/NAME/``, and each figure pointing at the file in ``NAME_files/``.
  :mod:`gdl_site.hooks` puts it in the place of ``notebooks/NAME.md``, so the navigation and
  the addresses are the same in both builds. It lies outside ``docs/`` so that neither builder
  copies it into the site.

Code cells are written as highlighted HTML, not as Markdown fences: they are run here, by the
notebook build, so neither pytest-codeblocks nor the fence audit should take them for page code.

**Cache.** An executed notebook is kept in ``.cache/notebooks/`` under a key made from the
notebook's bytes *and* every Python file of the ``gdl_ref`` package (but this build step's own
``gdl_site``), so a change to either re-executes it; a figure can never outlive the code that drew it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import posixpath
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from gdl_site.cards.mathml import MathError
from gdl_site.cards.render import protect_math

from .errors import SiteError
from .files import GeneratedFolder, write_if_changed
from .math import math_html

__all__ = ["PAGE_COPIES", "package_digest", "cache_key", "execute_cached", "notebook_markdown", "page_copy",
           "build_notebook_pages"]

TIMEOUT_S = 900  # per cell: generous for a loaded two-core machine
FIGURES = {"image/png": "png", "image/svg+xml": "svg"}
PAGE_COPIES = ".cache/notebook-pages"  # below the repository root: the notebooks mkdocs-jupyter renders
LINK = re.compile(r"(\]\()([^)\s]+)(\))")  # a Markdown link or image target: [text](target)


def package_digest(package_dir: Path) -> str:
    """SHA-256 over the path and bytes of every ``.py`` file of the package, in path order.

    The notebooks import only the reference package (``src/gdl_ref``), so the site's own code is not part
    of the key: a change to the build step turns the same executed notebooks into pages again.
    """
    digest = hashlib.sha256()
    for source in sorted(package_dir.rglob("*.py")):
        digest.update(source.relative_to(package_dir).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(notebook: Path, package: str) -> str:
    """The cache key of an executed notebook: its bytes, the package digest and the Python version."""
    digest = hashlib.sha256(notebook.read_bytes())
    digest.update(package.encode() + sys.version.encode())
    return digest.hexdigest()[:24]


def _execute(notebook: Path, root: Path) -> nbformat.NotebookNode:
    """Run ``notebook`` in a fresh kernel from an empty temporary folder (removed after)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory(prefix="gdl-ref-notebook-") as workdir:
        client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=False,
                                resources={"metadata": {"path": workdir}})
        try:
            client.execute()
        except CellExecutionError as error:
            first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise SiteError(f"{notebook.relative_to(root)}: a cell failed: {first}") from None
    return nb


def execute_cached(notebook: Path, root: Path, cache_dir: Path, package: str) -> tuple[nbformat.NotebookNode, bool]:
    """The executed notebook, from the cache when its key is there; and whether it was executed now.

    A cached file that does not read as a notebook is executed again; the cache is written whole
    (a temporary sibling, then a rename), and older entries of the same notebook are removed.
    """
    key = cache_key(notebook, package)
    cached = cache_dir / f"{notebook.stem}-{key}.ipynb"
    if cached.is_file():
        try:
            return nbformat.read(cached, as_version=4), False
        except (ValueError, OSError):  # unreadable JSON or a truncated file: run it again
            pass
    nb = _execute(notebook, root)
    write_if_changed(cached, nbformat.writes(nb).encode("utf-8"))
    for old in cache_dir.glob(f"{notebook.stem}-*.ipynb"):
        if old != cached and len(old.stem) == len(cached.stem):
            old.unlink()
    return nb, True


def _code_html(source: str) -> str:
    """A code cell as the HTML pymdownx.highlight gives a fence (Material styles and copies it)."""
    body = highlight(source, PythonLexer(), HtmlFormatter(nowrap=True)).rstrip("\n")
    # A blank line in the code is written as an entity: the raw HTML block then holds no blank line
    # at which Markdown could end it.
    body = body.replace("\n\n", "\n&#10;")
    return f'<div class="language-python highlight"><pre><span></span><code>{body}</code></pre></div>'


def _text_fence(text: str) -> str:
    ticks = "`" * max(3, max((len(run) for run in text.split("\n") if set(run) == {"`"}), default=0) + 1)
    return f"{ticks}text\n{text.rstrip()}\n{ticks}"


def _figures(cell: nbformat.NotebookNode) -> list[tuple[int, dict, str]]:
    """(output number from 1, output, MIME type) of each output of a code cell that is a figure."""
    found = []
    for k, output in enumerate(cell.get("outputs", []), start=1):
        if output.get("output_type") in {"display_data", "execute_result"}:
            figure = next((mime for mime in FIGURES if mime in output.get("data", {})), None)
            if figure:
                found.append((k, output, figure))
    return found


def figure_path(name: str, cell: int, output: int, mime: str) -> str:
    """Where a figure of notebook ``name`` is written, relative to ``docs/notebooks/``."""
    return f"{name}_files/cell{cell}-{output}.{FIGURES[mime]}"


def figure_alt(number: int, cell: int) -> str:
    """A figure's alternative text, the same on both builders' pages."""
    return f"Figure {number}: the output of cell {cell}"


def notebook_markdown(nb: nbformat.NotebookNode, name: str, figures: GeneratedFolder, where: str) -> str:
    """The Markdown page of an executed notebook; figures are written into ``figures`` as ``NAME_files/``.

    Raises:
        SiteError: a cell wrote to stderr or raised (``where`` names the notebook).
    """
    parts: list[str] = []
    shown = 0  # figures so far
    for index, cell in enumerate(nb.cells, start=1):
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "markdown":
            parts.append(source.strip())
            continue
        if cell.cell_type != "code" or not source.strip():
            continue
        parts.append(_code_html(source))
        for k, output in enumerate(cell.get("outputs", []), start=1):
            kind = output.get("output_type")
            if kind == "stream":
                text = "".join(output.get("text", ""))
                if output.get("name") == "stderr":
                    raise SiteError(f"{where}: cell {index} wrote to stderr: {text.strip()[:200]}")
                parts.append(_text_fence(text))
            elif kind == "error":
                raise SiteError(f"{where}: cell {index} raised {output.get('ename')}: {output.get('evalue')}")
            elif kind in {"display_data", "execute_result"}:
                data = output.get("data", {})
                figure = next((mime for mime in FIGURES if mime in data), None)
                if figure:
                    relative = figure_path(name, index, k, figure)
                    payload = data[figure]
                    raw = payload.encode() if figure == "image/svg+xml" else base64.b64decode(payload)
                    figures.write(relative, raw)
                    shown += 1
                    parts.append(f"![{figure_alt(shown, index)}]({relative})")
                elif "text/html" in data:
                    parts.append('<div class="notebook-output" markdown="0">\n'
                                 + "".join(data["text/html"]).strip() + "\n</div>")
                elif "text/plain" in data:
                    parts.append(_text_fence("".join(data["text/plain"])))
    return "\n\n".join(parts) + "\n"


def _after_title(markdown: str, lead: str) -> str:
    """``markdown`` with the paragraph ``lead`` after its first block when that is a title, else before it."""
    first, _, rest = markdown.partition("\n\n")
    return f"{first}\n\n{lead}\n\n{rest}" if first.startswith("# ") else f"{lead}\n\n{markdown}"


def page_link(target: str, name: str) -> str:
    """A link of a Markdown cell (relative to ``docs/notebooks/``) as seen from the page ``notebooks/NAME/``.

    MkDocs rewrites the links of the pages it renders from Markdown, not of a notebook's; so a link
    to ``../families/vae.md#loss`` is written ``../../families/vae/#loss`` here (directory URLs, as
    the site uses), and one to a file, ``NAME.ipynb``, ``../NAME.ipynb``. Addresses with a scheme,
    absolute paths and in-page anchors are left as they are.
    """
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("/", "#")):
        return target
    path, hash_, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join("notebooks", path))
    if resolved.endswith(".md"):
        stem = resolved[:-3]
        resolved = (stem[: -len("index")] if stem == "index" or stem.endswith("/index") else stem + "/")
        resolved = resolved or "./"
    relative = posixpath.relpath(resolved, f"notebooks/{name}")
    if resolved.endswith("/") and not relative.endswith("/"):
        relative += "/"
    return relative + hash_ + anchor


def _cell_markdown(source: str, name: str, root: Path, where: str, index: int) -> str:
    """A Markdown cell for mkdocs-jupyter: its math as MathML (as the site's math extension writes
    it), its links as :func:`page_link` gives them."""

    def write(tex: str, display: bool) -> str:
        try:
            return math_html(tex, display)
        except MathError as error:
            raise SiteError(f"{where}: cell {index}: math will not render: {error}") from None

    protected, maths = protect_math(source, root, write)
    protected = LINK.sub(lambda m: m.group(1) + page_link(m.group(2), name) + m.group(3), protected)
    return re.sub(r"GDLMATH(\d+)X", lambda m: maths[int(m.group(1))], protected)


def page_copy(nb: nbformat.NotebookNode, name: str, lead: str, root: Path, where: str) -> nbformat.NotebookNode:
    """The executed notebook as mkdocs-jupyter is to render it at ``notebooks/NAME/`` (module docstring).

    ``lead`` goes after the title of the first Markdown cell, as on the Markdown page; each figure
    output names its file (``../NAME_files/...``, written by :func:`notebook_markdown`) in
    ``metadata.filenames``, which nbconvert's template shows instead of inlining the image, and
    carries the same alternative text as the Markdown page's (``metadata.alt``, which
    :mod:`gdl_site.hooks` puts on the image).
    """
    page = copy.deepcopy(nb)
    first = page.cells[0] if page.cells and page.cells[0].cell_type == "markdown" else None
    if first is not None and first.source.lstrip().startswith("# "):
        first.source = _after_title(first.source.strip(), lead)
    else:
        first = None
    shown = 0
    for index, cell in enumerate(page.cells, start=1):  # numbered as notebook_markdown numbers them
        if cell.cell_type == "markdown":
            cell.source = _cell_markdown(cell.source, name, root, where, index)
        elif cell.cell_type == "code" and cell.source.strip():
            for k, output, mime in _figures(cell):
                shown += 1
                output.setdefault("metadata", {})["filenames"] = {mime: "../" + figure_path(name, index, k, mime)}
                output.metadata["alt"] = figure_alt(shown, index)
    if first is None:
        page.cells.insert(0, nbformat.v4.new_markdown_cell(_cell_markdown(lead, name, root, where, 0)))
    for number, cell in enumerate(page.cells):
        cell["id"] = f"page-{number}"  # fixed ids: the same notebook gives the same bytes
    return page


def build_notebook_pages(root: Path, sources: Path, out: Path, cache_dir: Path, version: str,
                         copies: Path | None = None) -> list[str]:
    """Execute (or take from the cache) each notebook under ``sources`` and write its page into ``out``,
    and the copy that mkdocs-jupyter renders into ``copies`` (default: :data:`PAGE_COPIES` under ``root``).

    Returns one line per notebook saying whether it was executed or cached.
    """
    package = package_digest(root / "src" / "gdl_ref")
    report = []
    with GeneratedFolder(out) as folder, GeneratedFolder(copies or root / PAGE_COPIES) as pages:
        for notebook in sorted(sources.glob("*.ipynb")):
            where = notebook.relative_to(root).as_posix()
            nb, ran = execute_cached(notebook, root, cache_dir, package)
            lead = (f"[Download this notebook]({notebook.name}) (executed) · source: `{where}` · executed by the "
                    f"site build with gdl-ref {version}: every output below is that run's.")
            folder.write(f"{notebook.stem}.md", _after_title(notebook_markdown(nb, notebook.stem, folder, where), lead))
            folder.write(notebook.name, nbformat.writes(nb) + "\n")
            pages.write(notebook.name, nbformat.writes(page_copy(nb, notebook.stem, lead, root, where)) + "\n")
            report.append(f"{where}: {'executed' if ran else 'from the cache'}")
    return report
