"""The site builds with `mkdocs build --strict`, with no warning, and every page exists."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT, SiteBuild


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
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def test_strict_build_succeeds_without_warnings(built_site: SiteBuild) -> None:
    assert built_site.returncode == 0, built_site.log[-4000:]
    warnings = [line for line in built_site.log.splitlines() if re.match(r"^(WARNING|ERROR)\b", line)]
    assert warnings == [], "\n".join(warnings)


def test_every_nav_page_is_built(built_site: SiteBuild) -> None:
    for page in _nav_pages(_load_mkdocs_config()["nav"]):
        stem = page.rsplit(".", 1)[0]
        out = built_site.site_dir / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert out.is_file(), f"{page} was not built to {out}"


def test_math_is_mathml_not_tex(built_site: SiteBuild) -> None:
    chapter = (built_site.site_dir / "chapters/generative-modelling/index.html").read_text(encoding="utf-8")
    assert "<math" in chapter
    assert '<span class="arithmatex">\\(' not in chapter
    assert "cdn" not in chapter.lower() or "mathjax" not in chapter.lower()


def test_card_downloads_are_generated(built_site: SiteBuild) -> None:
    deck = built_site.site_dir / "downloads/gdl-ref.apkg"
    csv = built_site.site_dir / "downloads/gdl-ref.csv"
    assert deck.is_file() and deck.read_bytes()[:2] == b"PK", "the Anki deck is a zip archive"
    assert csv.is_file() and csv.read_text(encoding="utf-8").count("\n") > 17


def test_notebook_pages_share_one_stylesheet(built_site: SiteBuild) -> None:
    shared = built_site.site_dir / "assets/notebook.css"
    assert shared.is_file() and shared.stat().st_size > 100_000, "the JupyterLab styles, written once"
    pages = sorted((built_site.site_dir / "notebooks").glob("*/index.html"))
    assert len(pages) == 6
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert '<link rel="stylesheet" href="../../assets/notebook.css">' in text, page
        inline = re.findall(r"<style[^>]*>(.*?)</style>", text, re.DOTALL)
        assert sum(map(len, inline)) < 20_000, f"{page}: {sum(map(len, inline))} characters of inline style"
