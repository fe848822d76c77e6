"""The site, as MkDocs and as Zensical build it, holds what a silent builder could leave out.

Zensical skips what it does not support without a word, so a green build proves nothing alone:
each test here runs on both builds (the ``any_site`` fixture) and looks in the output for the math,
the downloads, the notebook pages with their figures, the API reference and the embedded code.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import nbformat
import yaml

from conftest import ROOT, SiteBuild
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
        assert 'class="language-python highlight"' in html, f"{name}: no code cell"


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
