"""The benchmarks page (``docs/benchmarks.md``) of a recorded run: its provenance, what is measured, the targets
and one section a family that the family's chapter includes.

``render_page(doc, source, reasons)`` turns the JSON of ``gdl-ref bench --json`` (``benchmarks/results/*.json``)
into the page; ``benchmarks/render_page.py`` calls it, and a test checks the page against its JSON.
"""

from __future__ import annotations

import math
import shlex
from importlib import resources
from typing import Any

from gdl_ref.bench.budgets import RECORDED_STEPS, Budget, recorded_budget
from gdl_site.benchmarks_figure import bits_figure
from gdl_ref.bench.report import aggregate, fmt, fmt_ratio, pm, ratio, speed_table, spread, table, tables
from gdl_site.benchmark_targets import targets_table, training_text, verdicts


TEMPLATE = "benchmarks.md.jinja"  # in gdl_site/templates/


def _budget_text(doc: dict[str, Any]) -> str:
    """The budgets the rows ran under: '120 s per run (digits); 60 s per run (2-D toys)' when one budget holds
    for every family, else one entry a family, e.g. 'autoregressive: 1,500 steps (digits), 15,000 steps (2-D toys)'."""
    ok = [r for r in doc["results"] if "error" not in r]

    def limits(rows: list[dict[str, Any]]) -> list[str]:
        found = sorted({(r.get("budget_seconds"), r.get("budget_steps")) for r in rows}, key=str)
        return [Budget(seconds, steps).label() for seconds, steps in found]

    kinds = (("digits", lambda r: r["data"] == "digits"), ("2-D toys", lambda r: r["data"] != "digits"))
    if len({(r.get("budget_seconds"), r.get("budget_steps"), r["data"] == "digits") for r in ok}) <= 2:
        parts = [f"{limit} per run ({label})" for label, keep in kinds for limit in limits([r for r in ok if keep(r)])]
        return "; ".join(parts) or "–"
    per_family = []
    for family, _ in _families_in(ok):
        mine = [r for r in ok if r["family"] == family]
        entries = [f"{limit} ({label})" for label, keep in kinds for limit in limits([r for r in mine if keep(r)])]
        per_family.append(f"{family}: {', '.join(entries)}")
    return "; ".join(per_family)


def _families_in(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(family, title) for each family with a row, in the order of first appearance."""
    titles = {"autoregressive": "Autoregressive models", "flow": "Normalizing flows", "vae": "Variational autoencoders",
              "diffusion": "Diffusion models", "gan": "GANs", "ebm": "Energy-based models"}
    seen = dict.fromkeys(r["family"] for r in rows)
    return [(f, titles.get(f, f)) for f in seen]


def _provenance(doc: dict[str, Any]) -> str:
    """One line: when, on what, with which command a run was recorded."""
    m = doc["machine"]
    device = ", ".join(sorted({r["device"] for r in doc["results"]})) or "cpu"
    where = m.get("gpu") or f"{m['cpu']} ({m['logical_cpus']} logical CPUs, {_threads(m)})"
    return f"Recorded {doc['date'][:10]} on {device}: {where}, with `{doc['command']}`."


def _threads(machine: dict[str, Any]) -> str:
    """The torch threads of a run: '1 torch thread', '2 torch threads', with the runs at a time where several."""
    threads = machine["torch_threads"]
    counts = threads if isinstance(threads, list) else [threads]
    text = ", ".join(str(t) for t in counts) + (" torch thread" if counts == [1] else " torch threads")
    workers = machine.get("workers", 1)
    return text + (f" a run, {workers} runs at a time" if workers > 1 else "")


def _wall_text(seconds: float | None) -> str:
    """'1 h 23 min' for a recorded wall time, or 'not recorded' (runs recorded before it was)."""
    if seconds is None:
        return "not recorded"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def _headline(row: dict[str, Any]) -> str:
    """A family's figure on the digits: bits/dim ± sd for a likelihood, else the worst distance / floor."""
    if row.get("test_bits_per_dim") is not None:
        return f"{pm(row['test_bits_per_dim'], spread(row, 'test_bits_per_dim'))} bits/dim"
    floors = row.get("sample_quality_floor", {})
    ratios = {k: ratio(v, floors.get(k)) for k, v in row.get("sample_quality", {}).items() if k in floors}
    ratios = {k: v for k, v in ratios.items() if v is not None}
    if not ratios:
        return "–"
    worst = max(ratios, key=ratios.__getitem__)
    return f"{worst.upper() if worst in ('fd', 'kd', 'mmd') else worst} {fmt(ratios[worst], 2)} × floor (the worst)"


def _best_peer(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The peer on the same data with the lowest NLL (else the lowest first distance), and ours / peer."""
    peers = [r for r in rows if r.get("peer") and r["family"] == row["family"] and r["data"] == row["data"]
             and "error" not in r]
    if not peers:
        return "–"
    key = "test_nll" if row.get("test_nll") is not None and all(p.get("test_nll") is not None for p in peers) else None
    if key:
        best = min(peers, key=lambda p: p[key])
        return f"{best['model']}: NLL ours / peer {fmt_ratio(ratio(row[key], best[key]))}"
    first = next(iter(row.get("sample_quality", {})), None)
    if first is None:
        return "–"
    best = min(peers, key=lambda p: p.get("sample_quality", {}).get(first, math.inf))
    theirs = best.get("sample_quality", {}).get(first)
    return f"{best['model']}: {first.upper()} ours / peer {fmt_ratio(ratio(row['sample_quality'][first], theirs))}"


def summary_table(doc: dict[str, Any]) -> str:
    """One line a family on the digits: its figure, its first target and verdict, the best peer, its training."""
    rows = aggregate(doc["results"])
    judged = {(v.target.family, v.data): v for v in reversed(verdicts(doc["results"]))}  # the first target wins
    lines = []
    for family, label in _families_in(doc["results"]):
        ours = next((r for r in rows if r["family"] == family and r["data"] == "digits" and not r.get("peer")), None)
        if ours is None:
            continue
        if "error" in ours:
            lines.append([label, ours.get("model", ""), "failed to run", "–", "–", "–", "–"])
            continue
        verdict = judged.get((family, "digits"))
        lines.append([label, ours["model"], _headline(ours), verdict.target.goal if verdict else "–",
                      verdict.verdict if verdict else "–", _best_peer(ours, rows), training_text(ours)])
    return table(["family", "model", "on the digits (mean ± sd over seeds)", "target", "verdict", "best peer",
                  "training"], lines) + "\n" if lines else ""


def row_commands(doc: dict[str, Any], family: str) -> list[str]:
    """One command a data set that reproduces the family's rows on it: its seeds, its budget if not the
    recorded one, ``--moved`` for moved toys and ``--peers`` where a peer ran, with ``--peer-seeds`` and
    ``--moved-seeds`` where those rows ran other seeds than ours."""
    rows = [r for r in doc["results"] if r["family"] == family]
    commands = []
    for data in dict.fromkeys(r.get("toy", r["data"]) for r in rows):
        mine = [r for r in rows if r.get("toy", r["data"]) == data]
        words = ["gdl-ref", "bench", family, "--data", data]
        sample = next((r for r in mine if "error" not in r and not r.get("move")), mine[0])
        recorded = recorded_budget(family, data) if family in RECORDED_STEPS else None
        steps, seconds = sample.get("budget_steps"), sample.get("budget_seconds")
        if recorded is None or Budget(seconds, steps) != recorded:
            if steps:
                words += ["--budget-steps", str(steps)]
            if seconds:
                words += (["--budget-seconds", f"{seconds:g}"] if data == "digits" else
                          ["--budget-seconds", f"{seconds:g}", "--toy-budget-seconds", f"{seconds:g}"])

        def seeds_of(keep: Any) -> list[int]:
            return sorted({r.get("seed", 0) for r in mine if keep(r)})

        ours = seeds_of(lambda r: not r.get("peer") and not r.get("move")) or seeds_of(lambda r: True)
        words += ["--seeds", *(str(k) for k in ours)]
        for flag, seeds_flag, keep in (("--moved", "--moved-seeds", lambda r: r.get("move")),
                                       ("--peers", "--peer-seeds", lambda r: r.get("peer"))):
            chosen = seeds_of(keep)
            if chosen:
                words.append(flag)
                if chosen != ours:
                    words += [seeds_flag, *(str(k) for k in chosen)]
        if sample.get("device", "cpu") != "cpu":
            words += ["--device", sample["device"]]
        commands.append(shlex.join(words))
    return commands


def _budget_summary(doc: dict[str, Any]) -> str:
    """'its family's budget in optimiser steps (the run table lists them)' or the one budget all rows shared."""
    ok = [r for r in doc["results"] if "error" not in r]
    seconds = any(r.get("budget_seconds") for r in ok)
    return ("a wall-clock budget (the run table gives it): its figures depend on the machine's speed that day"
            if seconds else "its family's budget in optimiser steps, listed in the run table, so the figures do "
            "not depend on the machine's speed")


def _versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def render_page(doc: dict[str, Any], source: str, reasons: dict[str, str] | None = None,
                reasons_source: str | None = None) -> str:
    """docs/benchmarks.md for the recorded run ``doc`` (the JSON of ``gdl-ref bench --json``) read from ``source``.

    The prose is the template ``templates/benchmarks.md.jinja``; this function computes what fills it.
    ``reasons`` (from ``reasons_source``) says why each target not reached was missed; see ``targets_table``.
    """
    m = doc["machine"]
    load = " → ".join(", ".join(f"{v:g}" for v in la) if la else "not recorded"
                      for la in (m.get("loadavg_start"), m.get("loadavg_end")))
    hardware = f"{m['cpu']}, {m['logical_cpus']} logical CPUs, {_threads(m)}"
    if m.get("gpu"):
        hardware += f", GPU {m['gpu']}"
    run_table = [
        ("date (UTC)", doc["date"]),
        *([("note", doc["note"])] if doc.get("note") else []),
        ("command", f"`{doc['command']}`"),
        ("budget", _budget_text(doc)),
        ("machine", f"{hardware} ({m['system']})"),
        ("load average (1, 5, 15 min), start → end", load),
        ("seeds", ", ".join(str(k) for k in doc.get("seeds", [0]))),
        ("wall time of the whole run", _wall_text(doc.get("wall_seconds"))),
        ("device", ", ".join(sorted({r["device"] for r in doc["results"]})) or "–"),
        ("versions", _versions_text(doc["versions"])),
    ]
    families = [{"family": family, "label": label, "provenance": _provenance(doc),
                 "tables": tables([r for r in doc["results"] if r["family"] == family], level=4).rstrip(),
                 "commands": row_commands(doc, family)}
                for family, label in _families_in(doc["results"])]
    reproduce = [doc["command"], f"python benchmarks/render_page.py {source}"]
    return _template().render(
        source=source, budget_summary=_budget_summary(doc), figure=bits_figure(doc["results"]),
        summary=summary_table(doc).rstrip("\n"), earlier_estimators=doc.get("schema", 1) < 2, run_table=run_table,
        targets=targets_table(doc["results"], reasons), reasons_source=reasons_source,
        speed=speed_table(doc["results"]), families=families, wall=_wall_text(doc.get("wall_seconds")),
        reproduce=reproduce,
    ).rstrip("\n") + "\n"


def _template() -> Any:
    """The page's template: prose in Markdown, the run's figures filled in (undefined names are errors)."""
    import jinja2

    text = (resources.files("gdl_site") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                     keep_trailing_newline=True, autoescape=False)
    return environment.from_string(text)
