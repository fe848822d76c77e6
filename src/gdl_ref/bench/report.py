"""Benchmark reports: the Markdown tables of a run, ``tables(rows)``.

Ratios are *ours / peer*: below 1 favours ours for NLL and for seconds per example. A sample distance is
shown beside its floor, the same distance for real train data (mean +- sd over random train subsets).
A run with several seeds (``--seeds``) has one row per seed; ``aggregate`` merges them into one row per
model and data set whose figures are the means and whose ``sd`` holds the sd over seeds. With one seed,
the spread shown is the figure's own standard error.
"""

from __future__ import annotations

import math
import statistics
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: blank for missing, ``digits`` significant-ish decimals for floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.2e}"
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:,.{min(digits, 1)}f}"
    return str(value)


def fmt_rate(value: float | None) -> str:
    """Examples per second: thousands separated above 100, two significant digits below."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None when either is missing or the denominator is not positive."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mean(values: list[Any]) -> Any:
    """The mean; an integer when every value is the same integer (parameters, a step budget)."""
    if all(isinstance(v, int) for v in values) and len(set(values)) == 1:
        return values[0]
    return statistics.fmean(values)


def _merge(dicts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Means and sds over seeds of every number (and dict of numbers) of ``dicts``; the rest from the first."""
    mean, sd = dict(dicts[0]), {}
    for key, first in dicts[0].items():
        if key == "seed":
            continue
        values = [d.get(key) for d in dicts]
        if _is_number(first) and all(_is_number(v) for v in values):
            mean[key] = _mean(values)
            sd[key] = statistics.stdev(values) if len(values) > 1 else None
        elif isinstance(first, dict) and first and all(_is_number(v) for v in first.values()) \
                and all(isinstance(v, dict) for v in values):
            keys = [k for k in first if all(_is_number(v.get(k)) for v in values)]
            mean[key] = {k: _mean([v[k] for v in values]) for k in keys}
            sd[key] = {k: statistics.stdev(v[k] for v in values) if len(values) > 1 else None for k in keys}
    return mean, sd


def _with_sd(mean: dict[str, Any], sd: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    return {**mean, "sd": sd, "seeds": seeds}


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (family, model, peer, data): the mean over its seeds, with ``sd`` and ``seeds``.

    A row already aggregated (it has ``seeds``) passes through; failed seeds are listed in ``errors``, and a
    pair whose every seed failed stays an error row.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["family"], r.get("model", ""), r.get("peer", False), r["data"]), []).append(r)
    out = []
    for group in groups.values():
        if len(group) == 1 and "seeds" in group[0]:
            out.append(group[0])
            continue
        ok = [r for r in group if "error" not in r]
        if not ok:
            out.append({**group[0], "seeds": [r.get("seed", 0) for r in group]})
            continue
        row, sd = _merge(ok)
        row.pop("seed", None)
        row.update(seeds=[r.get("seed", 0) for r in ok], sd=sd)
        row["kl_negative"] = any(r.get("kl_negative") for r in ok) if "kl" in row else None
        swept = [r for r in ok if r.get("samplers")]  # the sampler sweep runs on the first seed only
        if swept:
            row["samplers"] = [_with_sd(*_merge([r["samplers"][i] for r in swept]), [r.get("seed", 0) for r in swept])
                               for i in range(len(swept[0]["samplers"]))]
        failed = [r for r in group if "error" in r]
        if failed:
            row["errors"] = [f"seed {r.get('seed', 0)}: {r['error']}" for r in failed]
        out.append(row)
    return out


def spread(row: dict[str, Any], key: str, sub: str | None = None) -> float | None:
    """The spread of a figure: the sd over seeds with several seeds, else its own standard error."""
    several = len(row.get("seeds", [])) > 1
    if sub is None:
        return row.get("sd", {}).get(key) if several else row.get(f"{key}_stderr")
    if several:
        return (row.get("sd", {}).get(key) or {}).get(sub)
    return row.get(f"{key}_stderr", {}).get(sub) if key == "sample_quality" else row.get(f"{key}_sd", {}).get(sub)


def pm(value: Any, spread: Any, digits: int = 3) -> str:
    """'value ± spread', or the value alone when there is no spread."""
    if value is None:
        return "–"
    return fmt(value, digits) if spread is None or (isinstance(spread, float) and math.isnan(spread)) \
        else f"{fmt(value, digits)} ± {fmt(spread, digits)}"


def _name(row: dict[str, Any]) -> str:
    """'family: Model' for ours, 'library Model (peer)' for a peer."""
    if row.get("peer"):
        return f"{row['model']} (peer)"
    return f"{row['family']}: {row['model']}" if row.get("model") else row["family"]


def _distance(row: dict[str, Any], key: str) -> str:
    """'value ± spread (floor ± sd; value / floor)' for one sample distance."""
    value = row.get("sample_quality", {}).get(key)
    floor = row.get("sample_quality_floor", {}).get(key)
    if value is None:
        return "–"
    shown = pm(value, spread(row, "sample_quality", key))
    if floor is None:
        return shown
    return f"{shown} ({pm(floor, row.get('sample_quality_floor_sd', {}).get(key))}; {fmt_ratio(ratio(value, floor))})"


def _kl(row: dict[str, Any]) -> str:
    """The paired KL with its spread, marked † when a seed's estimate fell below minus its standard error."""
    if row.get("kl") is None:
        return "–"
    return pm(row["kl"], spread(row, "kl")) + (" †" if row.get("kl_negative") else "")


def modes_covered(row: dict[str, Any]) -> int | None:
    """Modes of 8gaussians covered by the samples (an integer count), None elsewhere."""
    value = row.get("sample_quality", {}).get("modes_covered")
    return None if value is None else int(value)


def per_example_seconds(row: dict[str, Any]) -> float | None:
    """Training seconds per example seen: 1 / train_examples_per_s."""
    rate = row.get("train_examples_per_s")
    return 1.0 / rate if rate else None


def _seed_counts(rows: list[dict[str, Any]]) -> set[int]:
    return {len(r.get("seeds", [0])) for r in rows}


def _spread_note(rows: list[dict[str, Any]]) -> str:
    if len(_seed_counts(rows)) > 1:
        return ("Each figure is the mean ± sd over the seeds its row ran (the *seeds* column); with one seed, the ± "
                "is the figure's own standard error.")
    seeds = max(_seed_counts(rows), default=1)
    return (f"Each figure is the mean ± sd over {seeds} seeds." if seeds > 1 else
            "One seed: each ± is the figure's own standard error (the NLL's and KL's over the test points, a "
            "distance's by the bootstrap).")


def _table_order(row: dict[str, Any]) -> tuple[bool, bool]:
    """Our rows first, on the data as given and then on moved toys, then the peers' (stable within each)."""
    return bool(row.get("peer")), "move" in row or "toy" in row


def speed_table(rows: list[dict[str, Any]]) -> str:
    """Throughput, ours beside each peer on the same data: train and sample examples per second (means over
    seeds), ours / peer (above 1: ours is faster), torch threads and the 1-minute load average as each run
    began. '' when no peer ran."""
    ok = [r for r in aggregate(rows) if "error" not in r]
    lines = []
    for p in (r for r in ok if r.get("peer")):
        ours = next((r for r in ok if not r.get("peer") and r["family"] == p["family"] and r["data"] == p["data"]), None)
        if ours is None:
            continue
        load = [r.get("loadavg_start") for r in (ours, p)]
        lines.append([p["family"], p["data"], _name(ours), p["model"],
                      fmt_rate(ours.get("train_examples_per_s")), fmt_rate(p.get("train_examples_per_s")),
                      fmt_ratio(ratio(ours.get("train_examples_per_s"), p.get("train_examples_per_s"))),
                      fmt_rate(ours.get("sample_examples_per_s")), fmt_rate(p.get("sample_examples_per_s")),
                      fmt_ratio(ratio(ours.get("sample_examples_per_s"), p.get("sample_examples_per_s"))),
                      " / ".join(fmt(r.get("torch_threads")) for r in (ours, p)),
                      " / ".join(fmt(v, 2) for v in load)])
    if not lines:
        return ""
    return table(["family", "data", "ours", "peer", "train ex/s, ours", "train ex/s, peer", "ours / peer",
                  "sample ex/s, ours", "sample ex/s, peer", "ours / peer", "threads (ours / peer)",
                  "load at start (ours / peer)"], lines) + "\n"


def tables(rows: list[dict[str, Any]], level: int = 3) -> str:
    """The Markdown tables of a run: likelihoods, samples, samplers, ours / peer ratios, failures.

    ``rows`` are the rows per seed (or already aggregated); ``level`` is the heading level of each table's
    title (3: ``###``).
    """
    h = "#" * level
    failed = [r for r in rows if "error" in r]
    rows = sorted(aggregate(rows), key=_table_order)
    ok = [r for r in rows if "error" not in r]
    out = []
    lik = [r for r in ok if r.get("test_nll") is not None]
    if lik:
        flagged = any(r.get("kl_negative") for r in lik)
        out.append(f"{h} Test likelihood\n\n{_spread_note(lik)}"
                   + (" † marks a KL estimate below minus its standard error: possible with a finite test "
                      "sample, since the KL itself is never negative." if flagged else "") + "\n\n" + table(
            ["model", "data", "bound", "params", "steps", "train s", "test n", "NLL (nats)", "bits/dim",
             "KL(p ‖ q) (nats)", "train ex/s"] + _seeds_header(lik),
            [[_name(r), r["data"], r["bound"], fmt(r["params"]), fmt(r["steps"]), fmt(r["train_seconds"], 1),
              fmt(r.get("test_examples")), pm(r["test_nll"], spread(r, "test_nll")),
              pm(r.get("test_bits_per_dim"), spread(r, "test_bits_per_dim")), _kl(r),
              fmt_rate(r["train_examples_per_s"])] + _seeds_cell(r, lik) for r in lik]))
    if ok:
        out.append(f"{h} Samples\n\n{_spread_note(ok)} Each distance is shown as *value (floor; value / floor)*, "
                   "the floor being the same distance for as many real train examples, mean ± sd over random "
                   "train subsets.\n\n" + table(
                       ["model", "data", "samples", "FD", "KD", "MMD", "1-NN accuracy", "modes",
                        "within 3σ of a mode", "sample ex/s"] + _seeds_header(ok),
                       [[_name(r), r["data"], fmt(r["samples"]), _distance(r, "fd"), _distance(r, "kd"),
                         _distance(r, "mmd"), _distance(r, "one_nn"),
                         fmt(modes_covered(r)), fmt(r["sample_quality"].get("high_quality_share"), 2),
                         fmt_rate(r["sample_examples_per_s"])] + _seeds_cell(r, ok) for r in ok]))
    swept = [r for r in ok if r.get("samplers")]
    for r in swept:
        out.append(f"{h} Samplers: {_name(r)} on {r['data']}\n\nThe same trained model sampled by each sampler "
                   f"({fmt(r['samples'])} samples under one seed); distances as *value (floor; value / floor)*.\n\n"
                   + table(["sampler", "FD", "KD", "MMD", "1-NN accuracy", "sample ex/s"],
                            [[v["sampler"], _distance(v, "fd"), _distance(v, "kd"), _distance(v, "mmd"),
                              _distance(v, "one_nn"), fmt_rate(v["sample_examples_per_s"])]
                             for v in r["samplers"]]))
    comparisons = []
    for p in (r for r in ok if r.get("peer")):
        ours = next((r for r in ok if not r.get("peer") and r["family"] == p["family"]
                     and r["data"] == p["data"]), None)
        if ours is None:
            continue
        nll = ratio(ours.get("test_nll"), p.get("test_nll"))
        comparisons.append([p["data"], _name(ours), p["model"], fmt_ratio(nll),
                            fmt_ratio(ratio(per_example_seconds(ours), per_example_seconds(p))),
                            fmt_ratio(ratio(ours["sample_seconds"] / ours["samples"],
                                            p["sample_seconds"] / p["samples"])),
                            _distance_ratio(ours, p), p.get("note", "")])
    if comparisons:
        out.append(f"{h} Ours / peer\n\nRatios below 1 favour ours: NLL (nats), training seconds per example, "
                   "sampling seconds per example, and the first sample distance (FD on digits, MMD on toys).\n\n"
                   + table(["data", "ours", "peer", "NLL", "train time", "sample time", "distance", "note"],
                            comparisons))
    if failed:
        out.append(f"{h} Failed runs\n\n" + "\n".join(
            f"- {_name(r)} on {r['data']}" + (f", seed {r['seed']}" if "seed" in r else "") + f": `{r['error']}`"
            for r in failed))
    return "\n\n".join(out) + "\n"


def _seeds_header(rows: list[dict[str, Any]]) -> list[str]:
    """A *seeds* column, only where the rows of a table ran different numbers of seeds."""
    return ["seeds"] if len(_seed_counts(rows)) > 1 else []


def _seeds_cell(row: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    return [", ".join(str(k) for k in row.get("seeds", [0]))] if len(_seed_counts(rows)) > 1 else []


def _distance_ratio(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    key = "fd" if ours["data"] == "digits" else "mmd"
    return fmt_ratio(ratio(ours.get("sample_quality", {}).get(key), peer.get("sample_quality", {}).get(key)))
