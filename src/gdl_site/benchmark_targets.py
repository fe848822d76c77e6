"""The benchmark's targets: each judged from the rows of a run, with its value, its spread and a verdict.

A target names a family, the data sets it applies to and a goal; ``value(row, rows)`` reads the figure
(the mean over seeds) from our row, and from a peer's row where the goal is to be ahead of a peer.
``targets_table(rows, reasons)`` writes one line per (target, data set) with a row. A target not reached
must have its reason in ``reasons`` (keyed by ``Target.key``): the page states why, or it is not rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gdl_ref.data import MOVES, TOY_NAMES
from gdl_ref.bench.report import aggregate, fmt, modes_covered, pm, ratio, spread, table

Row = dict[str, Any]

TOYS = TOY_NAMES
MOVED_TOYS = tuple(move.label(toy) for toy in TOYS for move in MOVES)  # e.g. "moons ×10" (Move.label, as Dataset.label)


@dataclass(frozen=True)
class Target:
    """A goal: ``met(value(row, rows))`` for our row of ``family`` on each data set of ``data``.

    ``spread(row, rows)`` is the value's sd over seeds (or its standard error with one seed); None where
    the value is a ratio of two means.
    """

    family: str
    data: tuple[str, ...]
    goal: str
    value: Callable[[Row, list[Row]], float | None]
    met: Callable[[float], bool]
    spread: Callable[[Row, list[Row]], float | None] = lambda row, rows: None
    which: Callable[[Row], str | None] = lambda row: None  # what the value is of, where it picks one of several

    def key(self, data: str) -> str:
        """The name of this target on ``data`` in the reasons file: 'family | data | goal'."""
        return f"{self.family} | {data} | {self.goal}"


def _figure(key: str) -> tuple[Callable[[Row, list[Row]], float | None], Callable[[Row, list[Row]], float | None]]:
    """The value and the spread of the figure ``key`` of our row."""
    return (lambda row, rows: row.get(key)), (lambda row, rows: spread(row, key))


def _floor_ratios(row: Row) -> dict[str, float]:
    """distance / floor for every sample distance of ``row`` with a positive floor."""
    floors = row.get("sample_quality_floor", {})
    ratios = {k: ratio(v, floors.get(k)) for k, v in row.get("sample_quality", {}).items() if k in floors}
    return {k: r for k, r in ratios.items() if r is not None}


def _worst_floor_ratio(row: Row, rows: list[Row]) -> float | None:
    """The largest distance / floor over every sample distance with a positive floor."""
    ratios = _floor_ratios(row)
    return max(ratios.values()) if ratios else None


def _worst_distance(row: Row) -> str | None:
    """The name of the distance furthest above its floor."""
    ratios = _floor_ratios(row)
    return max(ratios, key=ratios.__getitem__) if ratios else None


def _floor_ratio(key: str) -> Callable[[Row, list[Row]], float | None]:
    return lambda row, rows: ratio(row.get("sample_quality", {}).get(key), row.get("sample_quality_floor", {}).get(key))


def _versus(peer: str, figure: Callable[[Row], float | None]) -> Callable[[Row, list[Row]], float | None]:
    """ours / peer of ``figure`` on the same data (means over seeds); None when the peer has no row."""
    def value(row: Row, rows: list[Row]) -> float | None:
        theirs = next((r for r in rows if r.get("peer") and r.get("model") == peer and r["data"] == row["data"]
                       and "error" not in r), None)
        return None if theirs is None else ratio(figure(row), figure(theirs))
    return value


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda v: v <= limit


def _below_one(v: float) -> bool:
    return v < 1


BITS, BITS_SPREAD = _figure("test_bits_per_dim")
KL, KL_SPREAD = _figure("kl")
BITS_TARGETS = {"autoregressive": 1.70, "flow": 1.95, "diffusion": 1.75, "vae": 1.80}  # bits/dim on the digits


def _bits(family: str, qualifier: str = "") -> Target:
    limit = BITS_TARGETS[family]
    return Target(family, ("digits",), f"bits/dim ≤ {limit:.2f}{qualifier}", BITS, _at_most(limit), BITS_SPREAD)


TARGETS = [
    _bits("autoregressive"),
    _bits("flow"),
    Target("flow", ("digits",), "NLL below zuko NSF's (ours / peer < 1)",
           _versus("zuko NSF", lambda r: r.get("test_nll")), _below_one),
    _bits("diffusion", " (a valid bound)"),
    Target("diffusion", ("digits",), "FD ≤ 1.2 × floor", _floor_ratio("fd"), _at_most(1.2)),
    Target("diffusion", ("digits",), "FD below diffusers DDPM's (ours / peer < 1)",
           _versus("diffusers DDPM", lambda r: r.get("sample_quality", {}).get("fd")), _below_one),
    _bits("vae", " (IWAE)"),
    Target("autoregressive", TOYS + MOVED_TOYS, "KL ≤ 0.05 nats", KL, _at_most(0.05), KL_SPREAD),
    Target("flow", TOYS + MOVED_TOYS, "KL ≤ 0.05 nats", KL, _at_most(0.05), KL_SPREAD),
    Target("gan", ("digits", "8gaussians"), "every distance ≤ 2 × floor", _worst_floor_ratio, _at_most(2),
           which=_worst_distance),
    Target("ebm", ("digits", "8gaussians"), "every distance ≤ 2 × floor", _worst_floor_ratio, _at_most(2),
           which=_worst_distance),
    Target("gan", ("8gaussians",), "8 of 8 modes covered", lambda row, rows: modes_covered(row), lambda v: v >= 8),
    Target("ebm", ("8gaussians",), "8 of 8 modes covered", lambda row, rows: modes_covered(row), lambda v: v >= 8),
]


@dataclass(frozen=True)
class Verdict:
    """One line of the targets table."""

    target: Target
    data: str
    value: float | None
    spread: float | None
    seeds: int
    verdict: str  # "reached", "not reached", "failed to run" or "–" (no value)
    which: str | None = None  # e.g. the distance furthest above its floor

    @property
    def key(self) -> str:
        return self.target.key(self.data)


def verdicts(rows: list[Row]) -> list[Verdict]:
    """Every target on every data set with a row of ours, judged on the mean over seeds."""
    rows = aggregate(rows)
    out = []
    for t in TARGETS:
        for data in t.data:
            row = next((r for r in rows if not r.get("peer") and r["family"] == t.family and r["data"] == data), None)
            if row is None:
                continue
            failed = "error" in row
            value = None if failed else t.value(row, rows)
            verdict = "failed to run" if failed else "–" if value is None else (
                "reached" if t.met(value) else "not reached")
            out.append(Verdict(t, data, value, None if failed else t.spread(row, rows),
                               len(row.get("seeds", [0])), verdict, None if failed else t.which(row)))
    return out


def training_text(row: Row | None) -> str:
    """How the training ended: 'stopped early at step 650 of 1,500' or 'ran 2,000 steps' (a step budget),
    'stopped early at 3 s of 120 s' or 'ran 120 s of 120 s' (a wall-clock budget)."""
    if row is None or "error" in row or row.get("train_seconds") is None:
        return "–"
    if row.get("budget_steps") and not row.get("budget_seconds"):
        steps = f"{round(row['steps']):,}"
        if row.get("stop_reason") == "early_stopping":
            return f"stopped early at step {steps} of {row['budget_steps']:,}"
        return f"ran {steps} steps"
    budget = row.get("budget_seconds")
    of = f" of {fmt(budget, 0)} s" if budget else ""
    if row.get("stop_reason") == "early_stopping":
        return f"stopped early at {fmt(row['train_seconds'], 0)} s{of}"
    return f"ran {fmt(row['train_seconds'], 0)} s{of}"


def targets_table(rows: list[Row], reasons: dict[str, str] | None = None) -> str:
    """The targets beside the values reached (means over seeds, our models only), with a reason for each miss.

    ``reasons`` maps ``Target.key(data)`` to why it was missed; with ``reasons`` given, a target not reached
    without a reason, or a reason for a target that was reached or has no line, is a ValueError naming it
    (the page shows every miss with its reason, and no stale reason).
    """
    lines, missing = [], []
    aggregated = aggregate(rows)
    for v in verdicts(rows):
        row = next((r for r in aggregated if not r.get("peer") and r["family"] == v.target.family
                    and r["data"] == v.data), None)
        why = ""
        if v.verdict in ("not reached", "failed to run") and reasons is not None:
            why = reasons.get(v.key, "")
            if not why:
                missing.append(v.key)
        value = pm(v.value, v.spread) + (f" ({v.which})" if v.which else "")
        lines.append([v.target.family, v.data, v.target.goal, value, fmt(v.seeds), v.verdict,
                      training_text(row), why])
    if missing:
        raise ValueError("targets not reached without a reason (add them to the reasons file): " + "; ".join(missing))
    missed = {v.key for v in verdicts(rows) if v.verdict in ("not reached", "failed to run")}
    stale = sorted(set(reasons or {}) - missed)
    if stale:
        raise ValueError("reasons for targets that were reached or are not on the page (remove them): "
                         + "; ".join(stale))
    header = ["family", "data", "target", "value", "seeds", "verdict", "training", "why not"]
    if reasons is None:
        header, lines = header[:-1], [line[:-1] for line in lines]
    return table(header, lines) + "\n" if lines else ""
