"""Build hooks for the site (named in ``mkdocs.yml`` under ``hooks:``).

Two jobs, both done at build time so the published site needs no network:

* **Math as MathML.** ``pymdownx.arithmatex`` (generic mode) wraps TeX in
  ``<span class="arithmatex">\\(...\\)</span>`` and ``<div class="arithmatex">\\[...\\]</div>``.
  :func:`render_math` replaces each with MathML from :func:`gdl_ref.cards.mathml.to_mathml`,
  which browsers render natively: no JavaScript, no CDN, nothing to load. TeX that will
  not convert stops the build with the page's file and line.
* **The deck as a download.** The Anki deck and the CSV of every card are generated from
  ``docs/`` by :mod:`gdl_ref.cards.export` on every build and served under ``downloads/``,
  so they can never be stale or committed by hand.

Notebook pages rendered by mkdocs-jupyter carry a MathJax ``<script>`` pointing at a CDN;
:func:`strip_notebook_mathjax` removes it (notebooks keep their prose free of TeX). They also
inline the same JupyterLab stylesheet, about 0.6 MB, into every page: :func:`share_notebook_styles`
moves it to one file, ``assets/notebook.css``, that the browser fetches once for all notebooks.
"""

from __future__ import annotations

import html
import posixpath
import re
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from gdl_ref.cards.mathml import MathError, to_mathml

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)
_NOTEBOOK_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
_PRE = re.compile(r"(<pre\b.*?</pre>)", re.DOTALL)
_NB_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_NB_INLINE = re.compile(r"(?<![\\$])\$([^$\n<>]+?)\$")
_NB_MD_LINK = re.compile(r'href="(?![a-z]+:|#|/)([^"#]+)\.md(#[^"]*)?"')
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL)
DOWNLOADS = {"anki": "downloads/gdl-ref.apkg", "csv": "downloads/gdl-ref.csv"}
NOTEBOOK_CSS = "assets/notebook.css"
_notebook_styles: dict[str, None] = {}  # the notebook pages' style blocks, in first-seen order


def _line_of(tex: str, markdown: str) -> int:
    """1-based line of the first line of ``tex`` in the page source (0 when not found)."""
    first = tex.strip().splitlines()[0] if tex.strip() else tex
    for number, line in enumerate(markdown.splitlines(), start=1):
        if first and first in line:
            return number
    return 0


def render_math(content: str, src_path: str = "<page>", markdown: str = "") -> str:
    """Replace arithmatex's generic TeX wrappers in ``content`` with MathML.

    Raises:
        PluginError: naming ``src_path:line`` and the TeX when a formula will not render.
    """

    def convert(match: re.Match[str], display: bool) -> str:
        tex = html.unescape(match.group(1))
        try:
            mathml = to_mathml(tex, display=display)
        except MathError as error:
            line = _line_of(tex, markdown)
            raise PluginError(f"{src_path}:{line}: math will not render: {error}") from None
        return f'<div class="arithmatex">{mathml}</div>' if display else f'<span class="arithmatex">{mathml}</span>'

    content = _BLOCK.sub(lambda m: convert(m, True), content)
    return _INLINE.sub(lambda m: convert(m, False), content)


def strip_notebook_mathjax(content: str) -> str:
    """Remove the CDN MathJax loader that notebook pages carry."""
    return _NOTEBOOK_MATHJAX.sub("", content)


def render_notebook(content: str, src_uri: str, url: str) -> str:
    """A notebook page's Markdown cells: ``$...$`` / ``$$...$$`` to MathML, ``x.md`` links to page URLs.

    nbconvert leaves TeX for MathJax and links as written; code (inside ``<pre>``) is left alone.
    """

    def prose(part: str) -> str:
        part = _NB_DISPLAY.sub(lambda m: to_mathml(html.unescape(m.group(1)), display=True), part)
        part = _NB_INLINE.sub(lambda m: to_mathml(html.unescape(m.group(1)), display=False), part)

        def link(m: re.Match[str]) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(src_uri), m.group(1)))
            target_url = "" if target == "index" else target.removesuffix("/index") + "/"
            relative = posixpath.relpath(target_url or ".", url or ".")
            return f'href="{relative.rstrip("/") + "/"}{m.group(2) or ""}"'

        return _NB_MD_LINK.sub(link, part)

    try:
        return "".join(piece if piece.startswith("<pre") else prose(piece) for piece in _PRE.split(content))
    except MathError as error:
        raise PluginError(f"{src_uri}: math in a Markdown cell will not render: {error}") from None


def share_notebook_styles(content: str, url: str, styles: dict[str, None]) -> str:
    """Move a notebook page's ``<style>`` blocks into ``styles`` and link ``NOTEBOOK_CSS`` instead."""
    for block in _STYLE.findall(content):
        styles.setdefault(block)
    href = posixpath.relpath(NOTEBOOK_CSS, url.rstrip("/") or ".")
    return f'<link rel="stylesheet" href="{href}">\n' + _STYLE.sub("", content)


def on_page_content(html_content: str, page: Any, config: Any, files: Files) -> str:
    """mkdocs hook: MathML for every page; notebook pages lose the CDN script and the inline
    stylesheet, and get MathML too."""
    if page.file.src_uri.endswith(".ipynb"):
        content = share_notebook_styles(html_content, page.url, _notebook_styles)
        return render_notebook(strip_notebook_mathjax(content), page.file.src_uri, page.url)
    return render_math(html_content, page.file.src_path, page.markdown or "")


def on_pre_build(config: Any) -> None:
    """mkdocs hook: start each build (``mkdocs serve`` rebuilds) with no collected styles."""
    _notebook_styles.clear()


def on_post_build(config: Any) -> None:
    """mkdocs hook: write the notebook pages' shared stylesheet."""
    if _notebook_styles:
        target = Path(config["site_dir"]) / NOTEBOOK_CSS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(_notebook_styles), encoding="utf-8")


def on_files(files: Files, config: Any) -> Files:
    """mkdocs hook: add the Anki deck and the CSV of all cards, built from ``docs/``."""
    from gdl_ref.cards.export import CardProblems, export_cards  # late: genanki is only needed here

    docs_dir = Path(config["docs_dir"])
    out_dir = Path(tempfile.mkdtemp(prefix="gdl-ref-downloads-"))
    for fmt, uri in DOWNLOADS.items():
        target = out_dir / Path(uri).name
        try:
            export_cards([docs_dir], fmt, target, root=docs_dir.resolve().parent)
        except CardProblems as problems:
            raise PluginError(f"the cards have problems, so no {fmt} download was built:\n{problems}") from None
        files.append(File.generated(config, uri, abs_src_path=str(target)))
    return files
