"""MkDocs hook (named in ``mkdocs.yml`` under ``hooks:``): run the site's build step first, and have
mkdocs-jupyter render the notebook pages.

Everything the pages need is made either by a Markdown extension (math: ``gdl_site.math``;
embed checks: ``gdl_site.embeds``) or by the build step :mod:`gdl_site.prepare` (the card
downloads, the family notebooks, the notebook pages). Zensical runs the extensions but no hooks,
so its documented command runs the step itself; under MkDocs this hook runs it on every build,
``mkdocs serve`` rebuilds included. The step writes a file only when its content changed, so a
rebuild does not trigger another.

**Notebook pages.** Both builders read the one navigation of ``mkdocs.yml``, whose entries name
``notebooks/NAME.md``: the Markdown page the build step writes, which Zensical builds. Under MkDocs,
:func:`on_files` puts in that entry's place the executed notebook the step wrote for mkdocs-jupyter
(:data:`gdl_site.notebooks.PAGE_COPIES`), under the same ``src_uri``, so the page keeps its
address and its place in the navigation, and the plugin (``execute: false``) renders it.
:func:`on_page_content` then removes what the plugin's template adds that would leave the site
(the MathJax and Mermaid loaders: the math is MathML already), gives each figure its text, and moves
the template's styles (some 590 kB, the same on every notebook page) into one stylesheet of the site,
``assets/notebooks/notebook-HASH.css``, that each notebook page links and a reader's browser keeps.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url


from gdl_site.notebooks import PAGE_COPIES
from gdl_site.prepare import prepare  # absolute: MkDocs loads this file by its path

PLUGIN = "mkdocs-jupyter"
# The template's script elements that load code from elsewhere: MathJax (its loader, with the address
# given as custom_mathjax_url, and its configuration), Mermaid (an ES module imported from a CDN) and
# RequireJS. The clipboard script of the copy buttons is inline and stays.
LOADERS = (
    re.compile(r"<!-- Load mathjax -->\s*<script\b[^>]*>\s*</script>\s*", re.I),
    re.compile(r"(?:<!-- MathJax configuration -->\s*)?<script type=\"text/x-mathjax-config\">.*?</script>\s*",
               re.I | re.S),
    re.compile(r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>\s*", re.I | re.S),
    re.compile(r"<script\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>\s*</script>\s*", re.I),
)
IMG = re.compile(r"<img\b[^>]*>", re.I)
STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>\s*", re.I | re.S)
STYLESHEETS = "assets/notebooks"  # in the site: the notebook pages' stylesheet, named by its content

# The stylesheets this build's notebook pages link, by their path in the site: written after the build.
_stylesheets: dict[str, str] = {}


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).parent


def on_pre_build(config: Any) -> None:
    """mkdocs hook: the downloads and notebook pages, before MkDocs collects ``docs/``."""
    _stylesheets.clear()
    prepare(_root(config), quiet=True)


@event_priority(-50)  # after mkdocs-jupyter's on_files (priority 0): it wraps every file it selects in
# a NotebookFile, which loses the source path of a file that is not under docs/; this page needs none.
def on_files(files: Files, config: Any) -> Files:
    """mkdocs hook: each ``notebooks/NAME.md`` becomes the notebook mkdocs-jupyter renders."""
    if PLUGIN not in config["plugins"]:
        return files
    copies = _root(config) / PAGE_COPIES
    for copy in sorted(copies.glob("*.ipynb")):
        markdown = files.get_file_from_path(f"notebooks/{copy.stem}.md")
        if markdown is None:
            continue
        files.remove(markdown)
        page = File.generated(config, markdown.src_uri, abs_src_path=str(copy))
        page.edit_uri = f"../notebooks/{copy.name}"  # "edit" opens the notebook's source, notebooks/NAME.ipynb
        files.append(page)
    return files


def _is_notebook_page(page: Any, config: Any) -> bool:
    source = getattr(page.file, "abs_src_path", None)
    return bool(source) and Path(source).parent == _root(config) / PAGE_COPIES


def _figure_texts(source: str) -> dict[str, str]:
    """{figure file as the page names it: its alternative text}, from the notebook's output metadata."""
    texts = {}
    for cell in json.loads(Path(source).read_text(encoding="utf-8")).get("cells", []):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {})
            for name in meta.get("filenames", {}).values():
                if meta.get("alt"):
                    texts[name] = meta["alt"]
    return texts


def notebook_html(content: str, figure_texts: dict[str, str]) -> tuple[str, str]:
    """The plugin's HTML without the script loaders and the styles, each figure with its alternative
    text; and the styles, as one stylesheet."""
    for loader in LOADERS:
        content = loader.sub("", content)
    styles = [match.group(1).strip() for match in STYLE.finditer(content)]
    content = STYLE.sub("", content)

    def alt(match: re.Match[str]) -> str:
        tag = match.group(0)
        src = re.search(r'\bsrc="([^"]*)"', tag)
        text = figure_texts.get(html.unescape(src.group(1))) if src else None
        if text is None:
            return tag
        tag = re.sub(r'\salt="[^"]*"', "", tag)
        return tag.replace("<img", f'<img alt="{html.escape(text)}"', 1)

    return IMG.sub(alt, content), "\n\n".join(styles) + "\n"


def on_page_content(content: str, page: Any, config: Any, files: Files) -> str:
    """mkdocs hook: a notebook page as :func:`notebook_html` leaves it, linking its stylesheet."""
    if not _is_notebook_page(page, config):
        return content
    content, css = notebook_html(content, _figure_texts(page.file.abs_src_path))
    path = f"{STYLESHEETS}/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
    _stylesheets[path] = css
    return f'<link rel="stylesheet" href="{get_relative_url(path, page.url)}">\n{content}'


def on_post_build(config: Any) -> None:
    """mkdocs hook: write the notebook pages' stylesheet(s) into the site."""
    for path, css in _stylesheets.items():
        target = Path(config["site_dir"]) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(css, encoding="utf-8")  # as MkDocs writes the site's files (readable by a server)
