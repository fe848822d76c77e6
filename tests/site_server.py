"""Serve a built copy of the site on 127.0.0.1 and find a Chromium to drive it.

Shared by the browser tests (``tests/test_browser.py``), the link check (``tests/test_links.py``)
and the page-weight benchmark (``benchmarks/site_speed.py``). Nothing here touches the network
beyond the loopback interface.

The site is served under the path of ``site_url`` in ``mkdocs.yml`` (``/gdl-ref/``), as GitHub
Pages serves it, so that the pages' relative links, the sitemap that instant navigation reads and
the ``404.html`` page (whose links are absolute) are all exercised as a reader meets them.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]

# Flags for a headless Chromium on a machine with no network: without the background-networking
# ones, the closed network floods the browser with refused connections (updates, sync, QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# Debian's package installs /usr/bin/chromium (a launcher script) and /usr/lib/chromium/chromium.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")
SKIP_REASON = (
    "needs Chromium: install Debian's package (`apt-get install chromium`) or point GDL_REF_CHROMIUM "
    "at a Chromium binary; Playwright's own browser download is not used"
)


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$GDL_REF_CHROMIUM``, then Debian's paths, then ``$PATH``."""
    override = os.environ.get("GDL_REF_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    # Last, Google Chrome (preinstalled on hosted CI runners): the same engine, driven the same way.
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((found for found in map(shutil.which, names) if found), None)


def site_url(root: Path = ROOT) -> str:
    """``site_url`` from ``mkdocs.yml`` (read as text: the file may carry Python tags)."""
    match = re.search(r"^site_url:\s*['\"]?([^'\"\s#]+)", (root / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else "/"


def site_prefix(root: Path = ROOT) -> str:
    """The path the site lives under, with both slashes: ``/gdl-ref/`` for ``https://host/gdl-ref/``."""
    path = urlsplit(site_url(root)).path.strip("/")
    return f"/{path}/" if path else "/"


def require_site(site_dir: Path, log: str = "") -> Path:
    """``site_dir`` if a build put a home page there; otherwise skip the calling test, saying why."""
    if not (site_dir / "index.html").is_file():
        import pytest

        pytest.skip(f"the site did not build (test_site_build says why): {log[-300:]}")
    return site_dir


def built_pages(site_dir: Path) -> list[str]:
    """Every page of a built site as a URL relative to its root (``""``, ``"chapters/x/"``, ...).

    A page is an ``index.html`` outside ``assets/`` and ``search/``; ``404.html`` is not a page.
    The home page comes first, the rest in path order.
    """
    pages = []
    for html_file in site_dir.rglob("index.html"):
        rel = html_file.relative_to(site_dir).parent.as_posix()
        if rel.split("/")[0] in {"assets", "search"}:
            continue
        pages.append("" if rel == "." else f"{rel}/")
    return sorted(pages, key=lambda page: (page != "", page))


def sitemap_pages(site_dir: Path, root: Path = ROOT) -> list[str]:
    """The pages ``sitemap.xml`` lists, relative to the site root (same form as :func:`built_pages`)."""
    base = site_url(root).rstrip("/") + "/"
    tree = ET.parse(site_dir / "sitemap.xml")
    locs = [el.text or "" for el in tree.iter() if el.tag.endswith("loc")]
    return [loc[len(base):] if loc.startswith(base) else loc for loc in locs]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files under ``prefix``; anything else, or a missing file, gets ``404.html`` like Pages.

    ``sitemap.xml`` is served with ``site_url`` replaced by the local address: Material's instant
    navigation matches links against the sitemap after taking only the scheme and host name from the
    page's address, not its port, so on a test port it would otherwise fall back to full reloads.
    """

    prefix = "/"
    site_url = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _route(self) -> bool:
        path = urlsplit(self.path).path
        if path + "/" == self.prefix:  # /gdl-ref -> /gdl-ref/, as Pages does
            self.send_response(301)
            self.send_header("Location", self.prefix)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        if not path.startswith(self.prefix):
            self.send_error(404)
            return False
        self.path = "/" + self.path[len(self.prefix):]
        return True

    def do_GET(self) -> None:
        if not self._route():
            return
        if urlsplit(self.path).path == "/sitemap.xml" and self.site_url:
            host, port = self.server.server_address[:2]
            local = f"http://{host}:{port}{self.prefix}"
            body = (Path(self.directory) / "sitemap.xml").read_bytes().replace(self.site_url.encode(), local.encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self._route():
            super().do_HEAD()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class SiteServer:
    """A built site served from a daemon thread on ``127.0.0.1`` at a free port.

    Use as a context manager; :attr:`base_url` is the site's root, e.g. ``http://127.0.0.1:41234/gdl-ref/``.
    """

    def __init__(self, site_dir: Path, prefix: str | None = None) -> None:
        self.site_dir = Path(site_dir)
        self.prefix = prefix if prefix is not None else site_prefix()
        base = site_url().rstrip("/") + "/"
        handler = type("Handler", (_Handler,), {"prefix": self.prefix, "site_url": base if urlsplit(base).path == self.prefix else ""})
        self._httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(self.site_dir))
        )
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="site-server", daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    def url(self, page: str) -> str:
        """Absolute URL of a page given relative to the site root."""
        return self.base_url + page.lstrip("/")

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
