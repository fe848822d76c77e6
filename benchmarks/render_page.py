"""Generate docs/benchmarks.md from the JSON of a recorded ``gdl-ref bench`` run.

    python benchmarks/render_page.py [benchmarks/results/<run>.json] [--out docs/benchmarks.md]

With no file, the newest ``benchmarks/results/*.json`` (by name: they start with the date) is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gdl_ref.bench.report import render_page

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"


def latest() -> Path:
    runs = sorted(RESULTS.glob("*.json"))
    if not runs:
        raise FileNotFoundError(f"no recorded run in {RESULTS}; run benchmarks/record.sh first")
    return runs[-1]


def render(path: Path) -> str:
    """The page for the run stored at ``path`` (named relative to the repository root)."""
    path = path.resolve()
    source = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    return render_page(json.loads(path.read_text(encoding="utf-8")), source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="a results JSON (default: the newest)")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    path = args.run or latest()
    args.out.write_text(render(path), encoding="utf-8")
    print(f"wrote {args.out} from {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
