"""The site, as MkDocs and as Zensical build it, holds what a silent builder could leave out.

Zensical skips what it does not support without a word, so a green build proves nothing alone:
each test here runs on both builds (the ``any_site`` fixture) and looks in the output for the math,
the downloads, the notebook pages with their figures, the API reference and the embedded code.
"""

from __future__ import annotations

import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import yaml

from conftest import ROOT, BUILDERS, SiteBuild
from gdl_site.cards.fences import classify

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
FAMILY_PAGES = sorted((ROOT / "docs" / "families").glob("*.md"))


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _load_mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    Loader.add_constructor("!ENV", lambda loader, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def _text(html: str) -> str:
    """The visible text of an HTML page, entities decoded, tags removed."""
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_strict_build_succeeds_without_warnings(any_site: SiteBuild) -> None:
    assert any_site.returncode == 0, any_site.log[-4000:]
    log = re.sub(r"\x1b\[[0-9;]*m", "", any_site.log)  # Zensical colours its messages
    warnings = [line for line in log.splitlines() if re.match(r"^(WARNING|ERROR|Warning:|Error:)", line)]
    assert warnings == [], "\n".join(warnings)


def test_every_nav_page_is_built(any_site: SiteBuild) -> None:
    for page in _nav_pages(_load_mkdocs_config()["nav"]):
        stem = page.rsplit(".", 1)[0]
        out = any_site.site_dir / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert out.is_file(), f"{any_site.builder}: {page} was not built to {out}"


def test_math_is_mathml_not_tex(any_site: SiteBuild) -> None:
    chapter = (any_site.site_dir / "chapters/generative-modelling/index.html").read_text(encoding="utf-8")
    wrappers = re.findall(r'<(span|div) class="arithmatex">(.{0,12})', chapter, re.DOTALL)
    assert len(wrappers) > 20, f"{any_site.builder}: {len(wrappers)} formulas on chapter 1"
    unconverted = [start for _, start in wrappers if not start.startswith("<math")]
    assert unconverted == [], f"{any_site.builder}: TeX left unconverted: {unconverted[:3]}"
    assert "\\(" not in _text(chapter) and "\\[" not in _text(chapter)
    assert "mathjax" not in chapter.lower() and "katex" not in chapter.lower()


def test_card_downloads_are_generated(any_site: SiteBuild) -> None:
    deck = any_site.site_dir / "downloads/gdl-ref.apkg"
    csv = any_site.site_dir / "downloads/gdl-ref.csv"
    assert deck.is_file() and zipfile.is_zipfile(deck), "the Anki deck is a zip archive"
    assert "collection.anki2" in zipfile.ZipFile(deck).namelist()
    assert csv.is_file() and csv.read_text(encoding="utf-8").count("\n") > 17
    crowdanki = any_site.site_dir / "downloads/gdl-ref-crowdanki.zip"
    assert zipfile.is_zipfile(crowdanki) and any(n.endswith("deck.json") for n in zipfile.ZipFile(crowdanki).namelist())


def test_every_family_page_offers_its_runnable_blocks_as_a_notebook(any_site: SiteBuild) -> None:
    for page in FAMILY_PAGES:
        text = page.read_text(encoding="utf-8")
        runnable = [f.code.rstrip("\n") for f in classify(text, page.name, ROOT) if f.kind == "run" and f.lang == "python"]
        download = any_site.site_dir / "downloads/notebooks" / f"{page.stem}.ipynb"
        if not runnable:
            assert not download.exists(), f"{page.name} has no runnable block, yet a notebook"
            continue
        notebook = nbformat.reads(download.read_text(encoding="utf-8"), as_version=4)
        cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert cells[0].source.startswith("%pip install gdl-ref==")
        assert [c.source for c in cells[1:]] == runnable, f"{download.name}: not the page's runnable blocks"
        html = (any_site.site_dir / "families" / page.stem / "index.html").read_text(encoding="utf-8")
        assert f'href="../../downloads/notebooks/{page.stem}.ipynb"' in html, f"{page.name} does not link its notebook"


def test_one_page_per_notebook_with_its_figures(any_site: SiteBuild) -> None:
    assert len(NOTEBOOKS) == 6
    for name in NOTEBOOKS:
        html = (any_site.site_dir / "notebooks" / name / "index.html").read_text(encoding="utf-8")
        executed = nbformat.reads((any_site.site_dir / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"), 4)
        figures = sum("image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
                      for cell in executed.cells for out in cell.get("outputs", []))
        images = re.findall(r'<img [^>]*src="([^"]+)"', html)
        assert figures >= 1 and len(images) == figures, f"{name}: {len(images)} images for {figures} figures"
        for src in images:
            assert (any_site.site_dir / "notebooks" / name / src).resolve().is_file(), f"{name}: {src} missing"
        # Zensical builds the build step's Markdown page; MkDocs, the notebook through mkdocs-jupyter.
        code_cell = 'class="language-python highlight"' if any_site.builder == "zensical" else "<clipboard-copy"
        assert code_cell in html, f"{any_site.builder}: {name}: no code cell"


def test_api_reference_is_rendered(any_site: SiteBuild) -> None:
    api = (any_site.site_dir / "reference/api/index.html").read_text(encoding="utf-8")
    for name in ("gdl_ref.train.fit", "gdl_ref.data", "gdl_ref.metrics"):
        assert f'id="{name}"' in api, f"{any_site.builder}: {name} missing from the API reference"
    assert api.count('class="doc doc-heading"') > 50


def test_sections_are_embedded_from_the_package(any_site: SiteBuild) -> None:
    source = (ROOT / "src/gdl_ref/lessons/mle.py").read_text(encoding="utf-8")
    section = source.split("# --8<-- [start:closed_form]")[1].split("# --8<-- [end:closed_form]")[0]
    html = _text((any_site.site_dir / "families/mle/index.html").read_text(encoding="utf-8"))
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    assert lines and all(line in html for line in lines), f"{any_site.builder}: the closed_form section is not on the page"
    assert "--8<--" not in html


# ------------------------------------------------------------------------------ the notebook pages


# A request the page makes by itself (not a link to follow): a script, a stylesheet, an image, a frame,
# media, or CSS that imports or points at a URL.
FETCHED = re.compile(r"<(?:script|img|iframe|source|video|audio|embed|link)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", re.I)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")\s]*)|@import\s+['\"]([^'\"]*)", re.I)


def _off_site(html: str) -> list[str]:
    """Each address the page would fetch from another host (or, empty, from itself)."""
    found = [m.group(1) for m in FETCHED.finditer(html) if 'rel="canonical"' not in m.group(0)]
    found += [m.group(1) or m.group(2) for m in CSS_URL.finditer(html)]
    return [url for url in found if url == "" or re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)]


def test_mkdocs_renders_each_notebook_page_with_mkdocs_jupyter(built_site: SiteBuild) -> None:
    """Under MkDocs a notebook page is the plugin's (its .jupyter-wrapper, a cell per notebook cell), with
    every figure of the executed notebook as a file of the site, and nothing fetched from elsewhere."""
    assert built_site.returncode == 0, built_site.log[-4000:]
    for name in NOTEBOOKS:
        html = (built_site.site_dir / "notebooks" / name / "index.html").read_text(encoding="utf-8")
        executed = nbformat.reads((built_site.site_dir / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"), 4)
        assert html.count('<div class="jupyter-wrapper">') == 1, f"{name}: not rendered by mkdocs-jupyter"
        code = [cell for cell in executed.cells if cell.cell_type == "code"]
        markdown = [cell for cell in executed.cells if cell.cell_type == "markdown"]
        assert len(re.findall(r"<clipboard-copy\b", html)) == len(code), f"{name}: not one cell per code cell"
        assert len(re.findall(r'class="jp-Cell jp-MarkdownCell', html)) == len(markdown), f"{name}: Markdown cells"
        expected = [f"../{name}_files/cell{index}-{k}.png"
                    for index, cell in enumerate(executed.cells, start=1) if cell.cell_type == "code"
                    for k, out in enumerate(cell.get("outputs", []), start=1) if "image/png" in out.get("data", {})]
        wrapper = html[html.index('<div class="jupyter-wrapper">'):]
        images = re.findall(r'<img alt="Figure \d+: the output of cell \d+" class="[^"]*" src="([^"]+)"', wrapper)
        assert expected and images == expected, f"{name}: figures {images}, expected {expected}"
        for src in images:
            assert (built_site.site_dir / "notebooks" / name / src).resolve().is_file(), f"{name}: {src} missing"
        assert _off_site(html) == [], f"{name}: fetched from elsewhere: {_off_site(html)}"
        assert "text/x-mathjax-config" not in html and "mermaid.esm" not in html
        assert 'href="../%s.ipynb">Download this notebook</a>' % name in html
        # The template's styles are one stylesheet of the site, which every notebook page links.
        sheets = re.findall(r'<link rel="stylesheet" href="(\.\./\.\./assets/notebooks/notebook-\w+\.css)">', html)
        assert len(sheets) == 1 and (built_site.site_dir / "notebooks" / name / sheets[0]).resolve().is_file(), name
        assert "<style" not in wrapper and len(html) < 200_000, f"{name}: {len(html)} bytes"


class _Article(HTMLParser):
    """What a reader finds in a page's article: its headings, figures, links (but the permalinks and the
    edit button) and formulas."""

    SKIP = {"headerlink", "anchor-link", "md-content__button"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.heading: list[str] | None = None
        self.skip = 0
        self.headings: list[str] = []
        self.figures: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.math = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "article":
            self.inside = True
        if not self.inside:
            return
        if tag in {"h1", "h2", "h3"}:
            self.heading = []
        elif tag == "a" and self.SKIP & set(attr.get("class", "").split()):
            self.skip += 1
        elif tag == "a" and "href" in attr and not attr["href"].startswith("#__codelineno"):  # line anchors
            self.links.append(attr["href"])
        elif tag == "img":
            self.figures.append((attr.get("src", ""), attr.get("alt", "")))
        elif tag == "math":
            self.math += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.inside = False
        elif tag in {"h1", "h2", "h3"} and self.heading is not None:
            self.headings.append(" ".join("".join(self.heading).split()))
            self.heading = None
        elif tag == "a" and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if self.heading is not None and not self.skip:
            self.heading.append(data)


def test_both_builders_show_each_notebook_alike(built_site: SiteBuild, zensical_site: SiteBuild) -> None:
    """The two notebook pages of one notebook (mkdocs-jupyter's under MkDocs, the Markdown page under
    Zensical) show the same headings, figures (file and text), links and number of formulas."""
    assert built_site.returncode == 0 and zensical_site.returncode == 0
    for name in NOTEBOOKS:
        seen = {build.builder: _Article((build.site_dir / "notebooks" / name / "index.html").read_text(encoding="utf-8"))
                for build in (built_site, zensical_site)}
        mkdocs, zensical = (seen[builder] for builder in BUILDERS)
        assert mkdocs.headings == zensical.headings and len(mkdocs.headings) > 1, name
        assert mkdocs.figures == zensical.figures, name
        assert mkdocs.links == zensical.links and f"../{name}.ipynb" in mkdocs.links, name
        assert mkdocs.math == zensical.math, name
