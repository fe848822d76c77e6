"""Generate docs/benchmarks.md from the JSON of a recorded ``gdl-ref bench`` run.

    python benchmarks/render_page.py [benchmarks/results/<run>.json] [--out docs/benchmarks.md]

With no file, the newest recorded run (``benchmarks/results/YYYY-MM-DD-*.json``, newest by name) is used.
Beside a run, ``<run>.reasons.toml`` says why each target not reached was missed (written after the run,
from its rows): one ``"family | data | goal" = "why"`` line per miss. A miss without its reason stops the
render, naming the target.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from gdl_site.benchmarks_page import render_page
from gdl_ref.bounded_io import read_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
RUN_PATTERN = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-*.json"  # not metrics-figures.json


def latest() -> Path:
    runs = sorted(RESULTS.glob(RUN_PATTERN))
    if not runs:
        raise FileNotFoundError(f"no recorded run in {RESULTS}; run benchmarks/record.sh first")
    return runs[-1]


def reasons_path(run: Path) -> Path:
    """``<run>.reasons.toml`` beside the run's JSON."""
    return run.with_name(run.stem + ".reasons.toml")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def load_reasons(run: Path) -> dict[str, str] | None:
    """The reasons file of ``run`` as a dict, or None when there is none; a malformed one names its file."""
    path = reasons_path(run)
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: {err}") from None
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"{path}: each reason must be a non-empty string; not so for {', '.join(bad)}")
    return table


def render(path: Path) -> str:
    """The page for the run stored at ``path`` (named relative to the repository root)."""
    path = path.resolve()
    reasons = load_reasons(path)
    return render_page(read_json(path, what="bench run"), _relative(path), reasons,
                       _relative(reasons_path(path)) if reasons is not None else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="a results JSON (default: the newest)")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    path = args.run or latest()
    try:
        text = render(path)
    except ValueError as err:
        print(f"render_page: error: {err}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} from {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
