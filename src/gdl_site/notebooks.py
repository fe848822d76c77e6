"""The notebooks as site pages: executed once per change, shown as Markdown with their figures.

One path serves both builders. Each ``notebooks/NAME.ipynb`` of the repository is executed top to
bottom with nbclient and written, for both MkDocs and Zensical, as

* ``docs/notebooks/NAME.md``: the Markdown cells as they are (their math goes through the same
  ``gdl_site.math`` extension as every page), each code cell highlighted, each output as text
  or a figure;
* ``docs/notebooks/NAME_files/``: the figures, PNG or SVG;
* ``docs/notebooks/NAME.ipynb``: the executed notebook, offered as a download.

Code cells are written as highlighted HTML, not as Markdown fences: they are run here, by the
notebook build, so neither pytest-codeblocks nor the fence audit should take them for page code.

**Cache.** An executed notebook is kept in ``.cache/notebooks/`` under a key made from the
notebook's bytes *and* every Python file of the ``gdl_ref`` package (but this build step's own
``gdl_site``), so a change to either re-executes it; a figure can never outlive the code that drew it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import sys
import tempfile
from pathlib import Path

import nbformat
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from .errors import SiteError
from .files import GeneratedFolder, write_if_changed

__all__ = ["package_digest", "cache_key", "execute_cached", "notebook_markdown", "build_notebook_pages"]

TIMEOUT_S = 900  # per cell: generous for a loaded two-core machine
FIGURES = {"image/png": "png", "image/svg+xml": "svg"}


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
                    relative = f"{name}_files/cell{index}-{k}.{FIGURES[figure]}"
                    payload = data[figure]
                    raw = payload.encode() if figure == "image/svg+xml" else base64.b64decode(payload)
                    figures.write(relative, raw)
                    shown += 1
                    parts.append(f"![Figure {shown}: the output of cell {index}]({relative})")
                elif "text/html" in data:
                    parts.append('<div class="notebook-output" markdown="0">\n'
                                 + "".join(data["text/html"]).strip() + "\n</div>")
                elif "text/plain" in data:
                    parts.append(_text_fence("".join(data["text/plain"])))
    return "\n\n".join(parts) + "\n"


def build_notebook_pages(root: Path, sources: Path, out: Path, cache_dir: Path, version: str) -> list[str]:
    """Execute (or take from the cache) each notebook under ``sources`` and write its page into ``out``.

    Returns one line per notebook saying whether it was executed or cached.
    """
    package = package_digest(root / "src" / "gdl_ref")
    report = []
    with GeneratedFolder(out) as folder:
        for notebook in sorted(sources.glob("*.ipynb")):
            where = notebook.relative_to(root).as_posix()
            nb, ran = execute_cached(notebook, root, cache_dir, package)
            lead = (f"[Download this notebook]({notebook.name}) (executed) · source: `{where}` · executed by the "
                    f"site build with gdl-ref {version}: every output below is that run's.")
            page = notebook_markdown(nb, notebook.stem, folder, where)
            first, _, rest = page.partition("\n\n")
            body = f"{first}\n\n{lead}\n\n{rest}" if first.startswith("# ") else f"{lead}\n\n{page}"
            folder.write(f"{notebook.stem}.md", body)
            folder.write(notebook.name, nbformat.writes(nb) + "\n")
            report.append(f"{where}: {'executed' if ran else 'from the cache'}")
    return report
