"""Merge the JSONs of several ``gdl-ref bench`` runs (parts of one recording) into one recorded run.

    python benchmarks/merge_runs.py PART.json [PART.json ...] --out benchmarks/results/<date>-cpu.json [--note TEXT]

``benchmarks/results/2026-11-28-cpu.json`` was recorded this way, in parts under wall-clock budgets; a run
under the step budgets is one command (``benchmarks/record.sh``) and needs no merge. The merged run keeps every part's rows, and each part's command, wall time, load
averages and threads under ``parts``; its wall time runs from the first part's start to the last part's
end. Parts must come from the same commit and versions, or the merge stops naming the file that differs.
The output is never overwritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from gdl_ref.bench.report import aggregate
from gdl_ref.bounded_io import read_json
from gdl_ref.data import TOY_NAMES
from gdl_ref.models.registry import names

SAME = ("torch", "numpy", "python", "gdl-ref", "gdl-ref commit")  # versions every part must share


def _end(doc: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(doc["date"])


def _start(doc: dict[str, Any]) -> dt.datetime:
    return _end(doc) - dt.timedelta(seconds=doc.get("wall_seconds") or 0.0)


def row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Family (registry order), digits before toys, ours before peers, each toy before its moves, then seed."""
    family = list(names()).index(row["family"]) if row["family"] in names() else len(names())
    toy = row.get("toy", row["data"])
    move = row.get("move")
    return (family, toy != "digits", bool(row.get("peer")), row.get("model", ""),
            TOY_NAMES.index(toy) if toy in TOY_NAMES else -1,
            move is not None, (move or {}).get("scale", 1.0), (move or {}).get("shift", 0.0), row.get("seed", 0))


def load_part(path: Path) -> dict[str, Any]:
    try:
        doc = read_json(path, what="bench run")  # a part may come from anyone: read within a size limit
    except OSError as err:
        raise ValueError(f"{path}: not a readable JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a gdl-ref bench run (a JSON {type(doc).__name__}, not an object)")
    missing = {"schema", "date", "command", "machine", "versions", "results"} - doc.keys()
    if missing:
        raise ValueError(f"{path}: not a gdl-ref bench run (no {', '.join(sorted(missing))})")
    return doc


def merge(parts: list[tuple[Path, dict[str, Any]]], note: str = "") -> dict[str, Any]:
    """One recorded run from its parts (path, doc); ValueError naming a part whose versions differ."""
    first_path, first = parts[0]
    for path, doc in parts[1:]:
        for key in SAME:
            if doc["versions"].get(key) != first["versions"].get(key):
                raise ValueError(f"{path}: {key} {doc['versions'].get(key)!r} differs from "
                                 f"{first_path}'s {first['versions'].get(key)!r}; parts must come from one checkout")
        if doc["schema"] != first["schema"]:
            raise ValueError(f"{path}: schema {doc['schema']} differs from {first_path}'s {first['schema']}")
    by_start = sorted(parts, key=lambda p: _start(p[1]))
    by_end = sorted(parts, key=lambda p: _end(p[1]))
    start, end = _start(by_start[0][1]), _end(by_end[-1][1])
    rows = sorted((r for _, doc in parts for r in doc["results"]), key=row_order)
    versions: dict[str, str] = {}
    for _, doc in parts:
        versions.update(doc["versions"])
    machine = {**first["machine"], "loadavg_start": by_start[0][1]["machine"].get("loadavg_start"),
               "loadavg_end": by_end[-1][1]["machine"].get("loadavg_end"),
               "torch_threads": sorted({doc["machine"]["torch_threads"] for _, doc in parts})}
    return {
        "schema": first["schema"],
        "date": end.isoformat(timespec="seconds"),
        "command": f"{len(parts)} parts (see parts), merged by benchmarks/merge_runs.py",
        "note": note,
        "machine": machine,
        "versions": versions,
        "seeds": sorted({k for _, doc in parts for k in doc.get("seeds", [0])}),
        "wall_seconds": (end - start).total_seconds(),
        "parts": [{"file": path.name, "command": doc["command"], "started": _start(doc).isoformat(timespec="seconds"),
                   "wall_seconds": doc.get("wall_seconds"), "torch_threads": doc["machine"]["torch_threads"],
                   "loadavg_start": doc["machine"].get("loadavg_start"),
                   "loadavg_end": doc["machine"].get("loadavg_end")} for path, doc in by_start],
        "results": rows,
        "summary": aggregate(rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", type=Path, help="the JSON of each part")
    parser.add_argument("--out", type=Path, required=True, help="the merged run (never overwritten)")
    parser.add_argument("--note", default="", help="free text stored with the run")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"merge_runs: error: {args.out} exists; nothing was overwritten", file=sys.stderr)
        return 2
    try:
        doc = merge([(p, load_part(p)) for p in args.parts], args.note)
    except ValueError as err:
        print(f"merge_runs: error: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"merge_runs: wrote {args.out} ({len(doc['results'])} rows from {len(args.parts)} parts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
