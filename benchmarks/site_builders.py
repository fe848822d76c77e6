"""Build time (cold and warm) and size of the site under each builder, MkDocs and Zensical.

    python benchmarks/site_builders.py                  # both builders, one cold and one warm build each
    python benchmarks/site_builders.py --builders zensical --repeat 3
    python benchmarks/site_builders.py --keep-notebooks    # cold builds that reuse the executed notebooks

Cold: the build's caches removed first (the executed notebooks in ``.cache/notebooks/``, Zensical's
cache, the generated ``docs/downloads/`` and ``docs/notebooks/``), so the notebooks are executed
again; with ``--keep-notebooks`` the executed notebooks stay, and the cold build times the rest. Warm: the same command straight after, with every cache in place. Each builder runs its
documented command: ``mkdocs build --strict`` (its hook runs the build step) and
``python -m gdl_site.prepare && zensical build --strict``. Prints a table and writes JSON
(``artifacts/site-builders.json``); a warm time is the median of ``--repeat`` runs, with its range.
Wall time on a shared machine moves with its load, which the output records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gdl_ref.records import loadavg

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("docs/downloads", "docs/notebooks")  # the build step's output
NOTEBOOK_CACHE = ".cache/notebooks"


def _clear(keep_notebooks: bool) -> None:
    """Remove the build's caches: the generated folders, Zensical's cache (the rest of ``.cache/``)
    and, unless ``keep_notebooks``, the executed notebooks."""
    for folder in GENERATED:
        shutil.rmtree(ROOT / folder, ignore_errors=True)
    cache = ROOT / ".cache"
    for entry in cache.iterdir() if cache.is_dir() else []:
        if (keep_notebooks and entry == ROOT / NOTEBOOK_CACHE) or entry.name == "zensical-test-site":
            continue  # the executed notebooks when asked; the test suite's Zensical build always
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _commands(builder: str, site_dir: Path) -> list[list[str]]:
    if builder == "mkdocs":
        return [[sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]]
    return [[sys.executable, "-m", "gdl_site.prepare"], [sys.executable, "-m", "zensical", "build", "--strict"]]


def _build(builder: str, site_dir: Path) -> float:
    env = {**os.environ, "GDL_REF_SITE_OUT": str(site_dir), "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    for command in _commands(builder, site_dir):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"{builder}: {' '.join(command[2:])} failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return time.perf_counter() - start


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def measure(builder: str, repeat: int, keep_notebooks: bool) -> dict:
    _clear(keep_notebooks)
    site_dir = ROOT / ".cache" / f"bench-site-{builder}"  # inside the project: Zensical writes nowhere else
    load_before = (loadavg() or (None,))[0]
    cold = _build(builder, site_dir)
    warm = [_build(builder, site_dir) for _ in range(repeat)]
    size, count = _size(site_dir)
    shutil.rmtree(site_dir, ignore_errors=True)
    return {"builder": builder, "notebooks_executed_in_cold_build": not keep_notebooks, "cold_s": round(cold, 1), "warm_s": round(statistics.median(warm), 1),
            "warm_range_s": [round(min(warm), 1), round(max(warm), 1)], "warm_runs": repeat,
            "size_bytes": size, "files": count, "loadavg_1min_at_start": load_before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builders", nargs="+", default=["mkdocs", "zensical"], choices=["mkdocs", "zensical"])
    parser.add_argument("--repeat", type=int, default=1, help="warm builds per builder (default 1)")
    parser.add_argument("--keep-notebooks", action="store_true",
                        help="keep the executed notebooks for the cold build (it then times everything else)")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "site-builders.json")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: must be at least 1")
    rows = [measure(builder, args.repeat, args.keep_notebooks) for builder in args.builders]
    print(f"{'builder':<10} {'cold s':>8} {'warm s':>8} {'warm range':>12} {'size MB':>8} {'files':>6} {'load':>5}")
    for row in rows:
        low, high = row["warm_range_s"]
        print(f"{row['builder']:<10} {row['cold_s']:>8} {row['warm_s']:>8} {f'{low}-{high}':>12} "
              f"{row['size_bytes'] / 1e6:>8.1f} {row['files']:>6} {str(row['loadavg_1min_at_start']):>5}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
