"""Benchmark reports: the Markdown tables, the targets, and the benchmarks page of a recorded run.

``tables(rows)`` is what ``gdl-ref bench`` prints; ``render_page(doc, source)`` turns the JSON of a
recorded run (``benchmarks/results/*.json``) into ``docs/benchmarks.md`` (``benchmarks/render_page.py``).
Ratios are *ours / peer*: below 1 favours ours for NLL and for seconds per example. A sample distance is
shown beside its floor, the same distance for real train data (mean +- sd over random train subsets).
A run with several seeds (``--seeds``) has one row per seed; ``aggregate`` merges them into one row per
model and data set whose figures are the means and whose ``sd`` holds the sd over seeds. With one seed,
the spread shown is the figure's own standard error.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable


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


def _table(header: list[str], rows: list[list[str]]) -> str:
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
        if row.get("samplers"):
            row["samplers"] = [_with_sd(*_merge([r["samplers"][i] for r in ok]), row["seeds"])
                               for i in range(len(ok[0]["samplers"]))]
        failed = [r for r in group if "error" in r]
        if failed:
            row["errors"] = [f"seed {r.get('seed', 0)}: {r['error']}" for r in failed]
        out.append(row)
    return out


def _spread(row: dict[str, Any], key: str, sub: str | None = None) -> float | None:
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
    shown = pm(value, _spread(row, "sample_quality", key))
    if floor is None:
        return shown
    return f"{shown} ({pm(floor, row.get('sample_quality_floor_sd', {}).get(key))}; {fmt_ratio(ratio(value, floor))})"


def _kl(row: dict[str, Any]) -> str:
    """The paired KL with its spread, marked † when a seed's estimate fell below minus its standard error."""
    if row.get("kl") is None:
        return "–"
    return pm(row["kl"], _spread(row, "kl")) + (" †" if row.get("kl_negative") else "")


def _modes(row: dict[str, Any]) -> int | None:
    """Modes of 8gaussians covered by the samples (an integer count), None elsewhere."""
    value = row.get("sample_quality", {}).get("modes_covered")
    return None if value is None else int(value)


def per_example_seconds(row: dict[str, Any]) -> float | None:
    """Training seconds per example seen: 1 / train_examples_per_s."""
    rate = row.get("train_examples_per_s")
    return 1.0 / rate if rate else None


def _spread_note(rows: list[dict[str, Any]]) -> str:
    seeds = max((len(r.get("seeds", [])) for r in rows), default=1)
    return (f"Each figure is the mean ± sd over {seeds} seeds." if seeds > 1 else
            "One seed: each ± is the figure's own standard error (the NLL's and KL's over the test points, a "
            "distance's by the bootstrap).")


def tables(rows: list[dict[str, Any]], level: int = 3) -> str:
    """The Markdown tables of a run: likelihoods, samples, samplers, ours / peer ratios, failures.

    ``rows`` are the rows per seed (or already aggregated); ``level`` is the heading level of each table's
    title (3: ``###``).
    """
    h = "#" * level
    failed = [r for r in rows if "error" in r]
    rows = aggregate(rows)
    ok = [r for r in rows if "error" not in r]
    out = []
    lik = [r for r in ok if r.get("test_nll") is not None]
    if lik:
        flagged = any(r.get("kl_negative") for r in lik)
        out.append(f"{h} Test likelihood\n\n{_spread_note(lik)}"
                   + (" † marks a KL estimate below minus its standard error: possible with a finite test "
                      "sample, since the KL itself is never negative." if flagged else "") + "\n\n" + _table(
            ["model", "data", "bound", "params", "steps", "train s", "test n", "NLL (nats)", "bits/dim",
             "KL(p ‖ q) (nats)", "train ex/s"],
            [[_name(r), r["data"], r["bound"], fmt(r["params"]), fmt(r["steps"]), fmt(r["train_seconds"], 1),
              fmt(r.get("test_examples")), pm(r["test_nll"], _spread(r, "test_nll")),
              pm(r.get("test_bits_per_dim"), _spread(r, "test_bits_per_dim")), _kl(r),
              fmt_rate(r["train_examples_per_s"])] for r in lik]))
    if ok:
        out.append(f"{h} Samples\n\n{_spread_note(ok)} Each distance is shown as *value (floor; value / floor)*, "
                   "the floor being the same distance for as many real train examples, mean ± sd over random "
                   "train subsets.\n\n" + _table(
                       ["model", "data", "samples", "FD", "KD", "MMD", "1-NN accuracy", "modes",
                        "within 3σ of a mode", "sample ex/s"],
                       [[_name(r), r["data"], fmt(r["samples"]), _distance(r, "fd"), _distance(r, "kd"),
                         _distance(r, "mmd"), _distance(r, "one_nn"),
                         fmt(_modes(r)), fmt(r["sample_quality"].get("high_quality_share"), 2),
                         fmt_rate(r["sample_examples_per_s"])] for r in ok]))
    swept = [r for r in ok if r.get("samplers")]
    for r in swept:
        out.append(f"{h} Samplers: {_name(r)} on {r['data']}\n\nThe same trained model sampled by each sampler "
                   f"({fmt(r['samples'])} samples under one seed); distances as *value (floor; value / floor)*.\n\n"
                   + _table(["sampler", "FD", "KD", "MMD", "1-NN accuracy", "sample ex/s"],
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
                   + _table(["data", "ours", "peer", "NLL", "train time", "sample time", "distance", "note"],
                            comparisons))
    if failed:
        out.append(f"{h} Failed runs\n\n" + "\n".join(
            f"- {_name(r)} on {r['data']}" + (f", seed {r['seed']}" if "seed" in r else "") + f": `{r['error']}`"
            for r in failed))
    return "\n\n".join(out) + "\n"


def _distance_ratio(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    key = "fd" if ours["data"] == "digits" else "mmd"
    return fmt_ratio(ratio(ours.get("sample_quality", {}).get(key), peer.get("sample_quality", {}).get(key)))


@dataclass
class Target:
    """A goal of the benchmark page: ``value(row)`` must satisfy ``met(value)``."""

    family: str
    data: tuple[str, ...]
    goal: str
    value: Callable[[dict[str, Any]], float | None]
    met: Callable[[float], bool]
    spread: Callable[[dict[str, Any]], float | None] = lambda r: None  # sd over seeds, or the standard error


def _floor_ratio(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: ratio(r.get("sample_quality", {}).get(key), r.get("sample_quality_floor", {}).get(key))


TOYS = ("moons", "8gaussians", "checkerboard", "ring")
TARGETS = [
    Target("autoregressive", ("digits",), "bits/dim ≤ 1.75", lambda r: r.get("test_bits_per_dim"),
           lambda v: v <= 1.75, lambda r: _spread(r, "test_bits_per_dim")),
    Target("autoregressive", TOYS, "KL ≤ 0.05 nats", lambda r: r.get("kl"), lambda v: v <= 0.05,
           lambda r: _spread(r, "kl")),
    Target("flow", TOYS, "KL ≤ 0.05 nats", lambda r: r.get("kl"), lambda v: v <= 0.05, lambda r: _spread(r, "kl")),
    Target("gan", ("digits",), "FD ≤ 2 × floor", _floor_ratio("fd"), lambda v: v <= 2),
    Target("ebm", ("digits",), "FD ≤ 2 × floor", _floor_ratio("fd"), lambda v: v <= 2),
    Target("gan", ("8gaussians",), "MMD ≤ 2 × floor", _floor_ratio("mmd"), lambda v: v <= 2),
    Target("ebm", ("8gaussians",), "MMD ≤ 2 × floor", _floor_ratio("mmd"), lambda v: v <= 2),
    Target("gan", ("8gaussians",), "8 of 8 modes covered",
           lambda r: _modes(r), lambda v: v >= 8),
    Target("ebm", ("8gaussians",), "8 of 8 modes covered", lambda r: _modes(r), lambda v: v >= 8),
]


def targets_table(rows: list[dict[str, Any]]) -> str:
    """Each target beside the value reached, mean over seeds (our models only; a pair not run has no line)."""
    rows = aggregate(rows)
    lines = []
    for t in TARGETS:
        for data in t.data:
            row = next((r for r in rows if not r.get("peer") and r["family"] == t.family and r["data"] == data), None)
            if row is None:
                continue
            value = None if "error" in row else t.value(row)
            verdict = "failed to run" if "error" in row else "–" if value is None else (
                "reached" if t.met(value) else "not reached")
            spread = None if "error" in row else t.spread(row)
            lines.append([t.family, data, t.goal, pm(value, spread), fmt(len(row.get("seeds", [0]))), verdict])
    return _table(["family", "data", "target", "value", "seeds", "verdict"], lines) + "\n" if lines else ""


# ---------------------------------------------------------------------------------------------
# The benchmarks page
# ---------------------------------------------------------------------------------------------

PAGE_MARK = "<!-- generated by benchmarks/render_page.py from {source}; edit that script or re-record, not this page -->"


def _budget_text(doc: dict[str, Any]) -> str:
    """The budgets the rows ran under, e.g. '20 s (digits), 20 s (toys)'."""
    parts = []
    for label, rows in (("digits", [r for r in doc["results"] if r["data"] == "digits"]),
                        ("2-D toys", [r for r in doc["results"] if r["data"] != "digits"])):
        budgets = sorted({(r.get("budget_seconds"), r.get("budget_steps")) for r in rows if "error" not in r},
                         key=str)
        for seconds, steps in budgets:
            limit = " or ".join(x for x in (f"{seconds:g} s" if seconds else "", f"{steps} steps" if steps else "") if x)
            parts.append(f"{limit} per run ({label})")
    return "; ".join(parts) or "–"


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
    where = m.get("gpu") or f"{m['cpu']} ({m['logical_cpus']} logical CPUs, {m['torch_threads']} torch threads)"
    return f"Recorded {doc['date'][:10]} on {device}: {where}, with `{doc['command']}`."


def _wall_text(seconds: float | None) -> str:
    """'1 h 23 min' for a recorded wall time, or 'not recorded' (runs recorded before it was)."""
    if seconds is None:
        return "not recorded"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def _versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def render_page(doc: dict[str, Any], source: str) -> str:
    """docs/benchmarks.md for the recorded run ``doc`` (the JSON of ``gdl-ref bench --json``) read from ``source``."""
    m = doc["machine"]
    load = " → ".join(", ".join(f"{v:g}" for v in la) if la else "not recorded"
                      for la in (m.get("loadavg_start"), m.get("loadavg_end")))
    hardware = f"{m['cpu']}, {m['logical_cpus']} logical CPUs, {m['torch_threads']} torch threads"
    if m.get("gpu"):
        hardware += f", GPU {m['gpu']}"
    lines = [
        "# Benchmarks", "",
        PAGE_MARK.format(source=source), "",
        "Every number on this page comes from one recorded run of `gdl-ref bench`, kept as JSON in "
        f"`{source}`; the page is generated from that file by `python benchmarks/render_page.py {source}`, "
        "and a test checks that the two agree.", "",
    ]
    if doc.get("note"):
        lines += ['!!! warning "About this run"', "", f"    {doc['note']}", ""]
    if doc.get("schema", 1) < 2:
        lines += ['!!! warning "Recorded with the earlier estimators"', "",
                  "    This run predates the paired KL, the floors over random train subsets, the standard errors "
                  "and the seeds: its toy rows have no KL column, each floor is the distance of the first train "
                  "rows (not a mean over subsets), every figure is of one seed, and the flows' toy rows say "
                  "`exact` where the number is a differential NLL and name the class RealNVP where its couplings "
                  "were splines. `bash benchmarks/record.sh` records it again.", ""]
    lines += [
        "## The run", "",
        "| | |", "|---|---|",
        f"| date (UTC) | {doc['date']} |",
        f"| command | `{doc['command']}` |",
        f"| budget | {_budget_text(doc)} |",
        f"| machine | {hardware} ({m['system']}) |",
        f"| load average (1, 5, 15 min), start → end | {load} |",
        f"| seeds | {', '.join(str(k) for k in doc.get('seeds', [0]))} |",
        f"| wall time of the whole run | {_wall_text(doc.get('wall_seconds'))} |",
        f"| device | {', '.join(sorted({r['device'] for r in doc['results']})) or '–'} |",
        f"| versions | {_versions_text(doc['versions'])} |", "",
        "## What is measured", "",
        "- Training: `gdl_ref.train.fit` on the train split (digits rows 0–999; 100,000 seeded points of a toy) "
        "for the budget above, with each family's recipe (`gdl_ref.train.recipe`: batch size, learning rate, "
        "EMA, and for some families early stopping on the val split, which restores the best weights); a peer "
        "trains with the recipe of the family it is compared with.",
        "- NLL: the mean of `-model.log_prob` on the test split (digits rows 1350–1796, 447 images; 2,000 "
        "seeded toy points), in nats per example, with its standard error over the test examples. On digits "
        "also bits per dimension, NLL / (64 ln 2), over the 17 grey levels. The *bound* column says what the "
        "number is (`gdl_ref.likelihood.Bound`): `exact` (a discrete model's −log P(x) on the digits), "
        "`differential` (a continuous density's −log p(x) on the continuous toys: a differential NLL, not a "
        "probability), `dequantized` (a density on y = (x + u) / 17, u ~ U[0, 1)^64, plus 64 log 17), "
        "`iwae-k` (the importance-weighted bound with k samples) and `elbo` (the variational bound). The last "
        "three bound the discrete NLL from above in expectation over their Monte-Carlo draws; one evaluation "
        "can land on either side.",
        "- On 2-D toys, the paired KL(p_data ‖ p_model): the mean over the test points of log p_true(x) − "
        "log q(x), with its standard error (`gdl_ref.evaluate.paired_kl`). The true density is known, so "
        "the two log-densities are compared point by point and share the test sample's noise. The KL itself "
        "is never negative, but its estimate from 2,000 points can be; one below minus its standard error is "
        "marked †.",
        "- Samples: as many as the test split (or `--eval-samples`), scored by `gdl_ref.evaluate.evaluate_samples`: "
        "on digits the Fréchet (FD) and kernel (KD) distances of classifier features, MMD and the 1-NN "
        "two-sample accuracy (0.5 is ideal); on toys MMD, 1-NN accuracy and, on 8gaussians, the modes "
        "covered. Each distance has a bootstrap standard error (samples and reference resampled). The floor "
        "beside it is the same distance for as many real train examples, mean ± sd over 5 seeded random "
        "train subsets (the digits rows are ordered by writer, so a contiguous block would not do): a "
        "reference, not a bound, and a model's samples can land a little under it.",
        "- Seeds: each pair is trained and scored once per seed; a table shows the mean ± sd over the seeds "
        "(with one seed, the figure's own standard error). The JSON keeps every seed's row and a summary.",
        "- What ran: each row of the JSON records the optimisers' hyperparameters as their `param_groups` "
        "held them (`hparams`) and the steps each optimiser took (`optimizer_steps`, e.g. a GAN's generator "
        "and critic).",
        "- Peers (`--peers`) are other libraries' models trained by the same loop on the same data, split, "
        "seed and budget; their adapters are in `benchmarks/peers/`.", "",
    ]
    targets = targets_table(doc["results"])
    if targets:
        lines += ["## Targets", "", targets]
    lines += ["## Results", "",
              "One section a family, our models first and the peers after them. Each section is also shown on "
              "its family's chapter, included from this page.", ""]
    for family, label in _families_in(doc["results"]):
        rows = [r for r in doc["results"] if r["family"] == family]
        lines += [f"### {label}", "", f"<!-- --8<-- [start:{family}] -->", "",
                  f"*{_provenance(doc)}*", "", tables(rows, level=4).rstrip(), "",
                  f"<!-- --8<-- [end:{family}] -->", ""]
    lines += [
        "## Reproduce", "",
        "The recorded run is one command; `benchmarks/record.sh` runs it with the full budget and 3 seeds "
        f"and regenerates this page. This page's run took {_wall_text(doc.get('wall_seconds'))} of wall "
        "time (the run table gives the machine and its load).", "",
        "*Not run here: it trains every family and peer for minutes each, and needs the peers' "
        "packages from `benchmarks/requirements.txt`.*", "",
        '<!--pytest.mark.skip(reason="it trains every family and peer for minutes each")-->', "",
        "```bash",
        "pip install -r benchmarks/requirements.txt",
        "bash benchmarks/record.sh",
        "```", "",
        "This page's run was made with:", "",
        "*Not run here: it is the recorded run itself, minutes of training.*", "",
        '<!--pytest.mark.skip(reason="it is the recorded run itself, minutes of training")-->', "",
        "```bash",
        doc["command"],
        f"python benchmarks/render_page.py {source}",
        "```", "",
    ]
    return "\n".join(lines)
