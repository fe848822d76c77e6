"""Every link on the built site resolves: internal hrefs to files that exist, #fragments to an id.

Runs over the HTML of each strict build, MkDocs's and Zensical's (the ``any_site`` fixture); nothing is fetched. External
links are listed, not followed: ``artifacts/links/external.txt`` (one line a URL, with the pages that
link to it) and ``artifacts/links/report.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from conftest import ROOT, SiteBuild
from site_server import built_pages, require_site, site_url, sitemap_pages

REPORT_DIR = ROOT / "artifacts" / "links"
# (tag, attribute) pairs that point somewhere; srcset is split on commas.
LINK_ATTRS = {
    ("a", "href"), ("link", "href"), ("area", "href"), ("use", "href"), ("use", "xlink:href"),
    ("script", "src"), ("img", "src"), ("iframe", "src"), ("video", "src"), ("audio", "src"),
    ("source", "src"), ("source", "srcset"), ("img", "srcset"), ("embed", "src"), ("object", "data"),
}
# Resources a page loads as it renders (as opposed to links a reader follows).
LOADED = {("script", "src"), ("img", "src"), ("iframe", "src"), ("video", "src"), ("audio", "src"),
          ("source", "src"), ("source", "srcset"), ("img", "srcset"), ("embed", "src"), ("object", "data")}
LOADED_LINK_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest", "prefetch"}
NOT_LINKS = ("data:", "javascript:", "blob:", "about:")


@dataclass
class ParsedPage:
    """The ids a page defines and the links it holds, as (tag, attribute, value, rel)."""

    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, str, str, str]] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.page.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.page.ids.add(values["name"])
        rel = values.get("rel", "")
        for name, value in values.items():
            if (tag, name) not in LINK_ATTRS or not value.strip():
                continue
            targets = [part.strip().split()[0] for part in value.split(",") if part.strip()] if name == "srcset" else [value.strip()]
            self.page.links.extend((tag, name, target, rel) for target in targets)

    handle_startendtag = handle_starttag


@cache
def parse_html(path: Path) -> ParsedPage:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8", errors="replace"))
    collector.close()
    return collector.page


@dataclass
class LinkReport:
    """Broken internal links and fragments (``page: href: why``) and external URLs with their pages."""

    broken_files: list[str] = field(default_factory=list)
    broken_anchors: list[str] = field(default_factory=list)
    loaded_from_elsewhere: list[str] = field(default_factory=list)
    external: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    checked: int = 0


def _page_url(base: str, html_file: Path, site_dir: Path) -> str:
    rel = html_file.relative_to(site_dir).as_posix()
    return base + (rel[: -len("index.html")] if rel.endswith("index.html") else rel)


def _target_file(site_dir: Path, path: str) -> Path | None:
    """The file a site-relative path serves (a folder serves its index.html), or None."""
    target = site_dir / unquote(path)
    if path == "" or path.endswith("/"):
        target = target / "index.html"
    elif target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def check_links(site_dir: Path) -> LinkReport:
    """Resolve every link of every HTML file under ``site_dir`` without touching the network."""
    base = site_url().rstrip("/") + "/"
    report = LinkReport()
    for html_file in sorted(site_dir.rglob("*.html")):
        page_url = _page_url(base, html_file, site_dir)
        where = html_file.relative_to(site_dir).as_posix()
        for tag, attr, href, rel in parse_html(html_file).links:
            if href.lower().startswith(NOT_LINKS):
                continue
            absolute = urljoin(page_url, href)
            parts = urlsplit(absolute)
            loaded = (tag, attr) in LOADED or (tag == "link" and set(rel.split()) & LOADED_LINK_RELS)
            if not absolute.startswith(base) and (absolute + "/") != base:
                if urlsplit(href).scheme or urlsplit(href).netloc:
                    report.external[absolute].add(where)
                    if loaded:
                        report.loaded_from_elsewhere.append(f"{where}: <{tag} {attr}={href!r}> loads from another host")
                else:
                    report.broken_files.append(f"{where}: {href!r} climbs out of the site ({parts.path})")
                continue
            report.checked += 1
            path = parts.path[len(urlsplit(base).path):] if parts.path.startswith(urlsplit(base).path) else ""
            target = _target_file(site_dir, path)
            if target is None:
                report.broken_files.append(f"{where}: {href!r} -> /{path} does not exist")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in parse_html(target).ids:
                shown = target.relative_to(site_dir).as_posix()
                report.broken_anchors.append(f"{where}: {href!r} -> no id {fragment!r} in {shown}")
    return report


def write_report(report: LinkReport, out_dir: Path = REPORT_DIR) -> Path:
    """Write the external links (text and JSON) and return the text file's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{url}    <- {', '.join(sorted(pages))}" for url, pages in sorted(report.external.items())]
    text = out_dir / "external.txt"
    text.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    data = {
        "internal_links_checked": report.checked,
        "broken_files": report.broken_files,
        "broken_anchors": report.broken_anchors,
        "external": {url: sorted(pages) for url, pages in sorted(report.external.items())},
        "insecure_external": sorted(u for u in report.external if u.startswith("http://")),
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return text


@pytest.fixture(scope="module")
def site_dir(any_site: SiteBuild) -> Path:
    """The site as MkDocs builds it, then as Zensical does: every test below runs on both."""
    return require_site(any_site.site_dir, any_site.log)


@pytest.fixture(scope="module")
def links(site_dir: Path) -> LinkReport:
    report = check_links(site_dir)
    path = write_report(report)
    print(f"\n{report.checked} internal links checked; {len(report.external)} external URLs listed in {path}")
    return report


def test_every_internal_link_points_to_a_file(links: LinkReport) -> None:
    assert links.checked > 0
    assert links.broken_files == [], f"{len(links.broken_files)} broken links:\n" + "\n".join(links.broken_files)


def test_every_fragment_names_an_id_on_its_page(links: LinkReport) -> None:
    assert links.broken_anchors == [], f"{len(links.broken_anchors)} broken anchors:\n" + "\n".join(links.broken_anchors)


def test_pages_load_nothing_from_other_hosts(links: LinkReport) -> None:
    """Scripts, styles, fonts and images come from the site itself: it works offline and needs no CDN."""
    assert links.loaded_from_elsewhere == [], "\n".join(links.loaded_from_elsewhere)


def test_external_links_are_listed(links: LinkReport) -> None:
    text = (REPORT_DIR / "external.txt").read_text(encoding="utf-8")
    assert all(url in text for url in links.external)
    assert all(urlsplit(url).scheme in {"http", "https", "mailto"} for url in links.external), sorted(links.external)


def test_sitemap_lists_every_page(site_dir: Path) -> None:
    """Instant navigation reads the sitemap: a page missing from it would load without the app shell."""
    assert sorted(sitemap_pages(site_dir)) == sorted(built_pages(site_dir))


def test_check_links_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing id and a link out of the site are all caught."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="here">x</h2>', encoding="utf-8")
    (tmp_path / "index.html").write_text(
        '<a href="a/#here">ok</a><a href="a/#gone">anchor</a><a href="b/">file</a>'
        '<a href="../../up/">out</a><a href="https://example.org/x">ext</a>'
        '<script src="https://cdn.example.org/x.js"></script><a href="#top">self</a>',
        encoding="utf-8",
    )
    report = check_links(tmp_path)
    assert report.checked == 4
    assert [line.split(": ", 1)[1] for line in report.broken_anchors] == ["'a/#gone' -> no id 'gone' in a/index.html", "'#top' -> no id 'top' in index.html"]
    assert len(report.broken_files) == 2 and "'b/'" in report.broken_files[0] and "climbs out" in report.broken_files[1]
    assert set(report.external) == {"https://example.org/x", "https://cdn.example.org/x.js"}
    assert len(report.loaded_from_elsewhere) == 1
