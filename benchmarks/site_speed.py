"""How heavy the built site is, and how fast each page loads in a browser.

    python benchmarks/site_speed.py                      # build (mkdocs build --strict) into a temp dir, then measure
    python benchmarks/site_speed.py --site-dir site      # measure an existing build
    python benchmarks/site_speed.py --site-dir site --no-browser   # sizes only (no Chromium needed)

Prints three tables (size by kind, the largest files, every page) and writes JSON
(``artifacts/site-speed.json`` unless ``--json`` says otherwise).

Sizes: bytes on disk and, for text, gzip-compressed bytes (what a reader downloads from a server that
compresses, as GitHub Pages does). Load times: each page opened ``--repeat`` times in a fresh browser
context (a cold cache) served from 127.0.0.1; the median of ``domContentLoaded`` and ``load`` is
reported, with the requests and bytes the page pulled in. Loopback removes the network, so the times
measure what the page itself costs to parse, lay out and run; compare them between builds on the
same machine, not with a reader's connection.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from site_server import CHROMIUM_ARGS, SKIP_REASON, SiteServer, built_pages, find_chromium  # noqa: E402

TEXT = {".html", ".css", ".js", ".json", ".xml", ".svg", ".txt", ".csv", ".map"}
KINDS = [
    ("source maps", lambda p: p.suffix == ".map"),
    ("search index", lambda p: p.parts[:1] == ("search",)),
    ("lunr languages", lambda p: "lunr" in p.parts),
    ("downloads", lambda p: p.parts[:1] == ("downloads",)),
    ("html", lambda p: p.suffix == ".html"),
    ("css", lambda p: p.suffix == ".css"),
    ("javascript", lambda p: p.suffix == ".js"),
    ("images", lambda p: p.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico"}),
    ("fonts", lambda p: p.suffix.lower() in {".woff", ".woff2", ".ttf", ".otf"}),
]

# Collected in the page after load: navigation timing and what the page fetched.
TIMING_JS = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  return {
    dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    html_bytes: nav.decodedBodySize,
    requests: 1 + resources.length,
    bytes: nav.decodedBodySize + resources.reduce((sum, r) => sum + (r.decodedBodySize || 0), 0),
    dom_nodes: document.getElementsByTagName('*').length,
    images: document.images.length,
    math: document.getElementsByTagName('math').length,
  };
}
"""


def kind_of(rel: Path) -> str:
    return next((name for name, test in KINDS if test(rel)), "other")


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6)) if path.suffix in TEXT else path.stat().st_size


def measure_sizes(site_dir: Path, top: int = 10) -> dict[str, Any]:
    """Bytes on disk (and gzip bytes) by kind, the largest files, and every page's HTML."""
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "bytes": 0, "gzip_bytes": 0})
    files = []
    for path in sorted(p for p in site_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(site_dir)
        size, packed = path.stat().st_size, gzip_size(path)
        kind = kind_of(rel)
        by_kind[kind]["files"] += 1
        by_kind[kind]["bytes"] += size
        by_kind[kind]["gzip_bytes"] += packed
        files.append({"path": rel.as_posix(), "kind": kind, "bytes": size, "gzip_bytes": packed})
    pages = []
    for page in built_pages(site_dir):
        html = site_dir / page / "index.html"
        text = html.read_text(encoding="utf-8", errors="replace")
        pages.append({
            "page": page or "(home)",
            "html_bytes": html.stat().st_size,
            "html_gzip_bytes": gzip_size(html),
            "inline_image_bytes": sum(len(chunk.split('"', 1)[0]) for chunk in text.split('src="data:image')[1:]),
        })
    total = sum(f["bytes"] for f in files)
    return {
        "total_bytes": total,
        "total_gzip_bytes": sum(f["gzip_bytes"] for f in files),
        "total_without_source_maps": total - by_kind.get("source maps", {}).get("bytes", 0),
        "files": len(files),
        "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]["bytes"])),
        "largest_files": sorted(files, key=lambda f: -f["bytes"])[:top],
        "pages": sorted(pages, key=lambda p: -p["html_bytes"]),
    }


def measure_loads(site_dir: Path, repeat: int = 3) -> dict[str, Any]:
    """Median load timings of every page, each load in a fresh context (cold cache)."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise SystemExit(SKIP_REASON)
    results = []
    with SiteServer(site_dir) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        version = browser.version
        for page in built_pages(site_dir):
            runs = []
            for _ in range(repeat):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.origin + "/") else route.abort())
                tab = context.new_page()
                tab.goto(server.url(page), wait_until="load")
                runs.append(tab.evaluate(TIMING_JS))
                context.close()
            results.append({
                "page": page or "(home)",
                "dcl_ms": round(statistics.median(r["dcl"] for r in runs), 1),
                "load_ms": round(statistics.median(r["load"] for r in runs), 1),
                "requests": runs[-1]["requests"],
                "bytes_loaded": runs[-1]["bytes"],
                "dom_nodes": runs[-1]["dom_nodes"],
                "images": runs[-1]["images"],
                "math": runs[-1]["math"],
            })
        browser.close()
    return {"chromium": version, "repeat": repeat, "pages": results}


def build_site(target: Path) -> float:
    """``mkdocs build --strict`` (the CI command) into ``target``; returns the seconds it took."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)], cwd=ROOT, check=True)
    return time.perf_counter() - start


def kb(n: float) -> str:
    return f"{n / 1024:,.1f}"


def print_report(sizes: dict[str, Any], loads: dict[str, Any] | None) -> None:
    print(f"\nsite: {sizes['files']} files, {kb(sizes['total_bytes'])} KiB on disk "
          f"({kb(sizes['total_without_source_maps'])} KiB without source maps), {kb(sizes['total_gzip_bytes'])} KiB gzipped\n")
    print(f"{'kind':<16} {'files':>6} {'KiB':>10} {'gzip KiB':>10}")
    for kind, row in sizes["by_kind"].items():
        print(f"{kind:<16} {row['files']:>6} {kb(row['bytes']):>10} {kb(row['gzip_bytes']):>10}")
    print(f"\n{'largest files':<64} {'KiB':>10} {'gzip KiB':>10}")
    for row in sizes["largest_files"]:
        print(f"{row['path'][:64]:<64} {kb(row['bytes']):>10} {kb(row['gzip_bytes']):>10}")
    timing = {row["page"]: row for row in (loads or {}).get("pages", [])}
    print(f"\n{'page':<44} {'HTML KiB':>9} {'gzip':>7} {'img KiB':>8}" + (f" {'reqs':>5} {'loaded KiB':>10} {'nodes':>6} {'DCL ms':>7} {'load ms':>8}" if loads else ""))
    for row in sizes["pages"]:
        line = f"{row['page'][:44]:<44} {kb(row['html_bytes']):>9} {kb(row['html_gzip_bytes']):>7} {kb(row['inline_image_bytes']):>8}"
        if row["page"] in timing:
            t = timing[row["page"]]
            line += f" {t['requests']:>5} {kb(t['bytes_loaded']):>10} {t['dom_nodes']:>6} {t['dcl_ms']:>7.0f} {t['load_ms']:>8.0f}"
        print(line)
    if loads:
        print(f"\nChromium {loads['chromium']}, median of {loads['repeat']} cold loads per page from 127.0.0.1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site-dir", type=Path, help="a built site (default: build one with `mkdocs build --strict`)")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "site-speed.json", help="where to write the JSON")
    parser.add_argument("--repeat", type=int, default=3, help="cold loads per page (median reported)")
    parser.add_argument("--top", type=int, default=12, help="how many of the largest files to list")
    parser.add_argument("--no-browser", action="store_true", help="sizes only")
    args = parser.parse_args(argv)

    build_seconds = None
    with tempfile.TemporaryDirectory(prefix="gdl-ref-site-") as tmp:
        site_dir = args.site_dir
        if site_dir is None:
            site_dir = Path(tmp) / "site"
            build_seconds = build_site(site_dir)
        if not (site_dir / "index.html").is_file():
            parser.error(f"{site_dir} holds no built site (no index.html)")
        sizes = measure_sizes(site_dir, top=args.top)
        loads = None if args.no_browser else measure_loads(site_dir, repeat=args.repeat)
    print_report(sizes, loads)
    report = {
        "command": "python benchmarks/site_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "build_seconds": None if build_seconds is None else round(build_seconds, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "sizes": sizes,
        "loads": loads,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
