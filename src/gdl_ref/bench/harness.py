"""Benchmarks: train a family under a fixed budget on the fixed split, evaluate on the test split.

``gdl-ref bench FAMILY|all`` builds each model with ``gdl_ref.models.registry.build``, trains it with
``gdl_ref.train.fit`` for its family's budget in optimiser steps (``gdl_ref.bench.budgets``; ``--budget-steps``
or ``--budget-seconds`` replace it) on the train split, and scores it on the test split (digits rows
1350-1796; toys: the seeded test draw):

* everything ``gdl_ref.evaluate`` reports, and nothing scored here: test NLL in nats per example with its
  standard error, bits per dimension on digits, the kind of bound (``gdl_ref.likelihood.Bound``), the paired
  KL(p_data || p_model) on the 2-D toys, and the sample distances with bootstrap standard errors beside
  their floors (mean +- sd over random train subsets);
* what ran: the optimisers' hyperparameters as their ``param_groups`` held them and the steps of each
  optimiser (from ``gdl_ref.train.History``), parameters, steps, seconds, examples per second;
* with ``--seeds 0 1 2`` one row per seed; the tables and the JSON's ``summary`` give mean +- sd over seeds.

Peer libraries (zuko's flows, torchcfm's flow matching, diffusers' and lucidrains' DDPMs) are trained the same way with ``--peers``; their
adapters live in the repository's ``benchmarks/peers/`` and are imported only when asked for.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from gdl_ref import records
from gdl_ref.bench.budgets import Budget, recorded_budget
from gdl_ref.bench.job import Job
from gdl_ref.bench.progress import RowLog, partial_path
from gdl_ref.bench.report import aggregate, tables
from gdl_ref.bench.samplers import SAMPLER_SWEEPS
from gdl_ref.cli_errors import Failure, UsageError, fail, guarded
from gdl_ref.data import DATASETS, MOVES, TOY_NAMES, Dataset, Move
from gdl_ref.records import jsonable, loadavg

SCHEMA = 2  # 2: rows per seed, paired KL, standard errors, floors over subsets, hparams
TOY_BUDGET_CAP = 60.0  # with --budget-seconds, toys train for min(S, 60) unless --toy-budget-seconds says otherwise
BudgetOf = Callable[[str, str], Budget]  # (family, data) -> the budget of that run
MOVED_FAMILIES = ("autoregressive", "flow")  # the scale-free 2-D density models that --moved fits on moved toys
# The data sets each family is benchmarked on when --data is not given.
DEFAULT_DATA: dict[str, tuple[str, ...]] = {
    "autoregressive": ("digits", "moons", "8gaussians", "checkerboard", "ring"),
    "flow": ("digits", "moons", "8gaussians", "checkerboard", "ring"),
    "vae": ("digits",),
    "diffusion": ("digits",),
    "gan": ("digits", "8gaussians"),
    "ebm": ("digits", "8gaussians"),
}


@dataclass
class Peer:
    """A model from another library, trained and scored by the same harness as ours.

    ``build(data)`` returns an ``nn.Module`` with ``loss(x)`` and ``sample(n)`` in our contract (and
    ``log_prob`` with ``bound`` when the library gives a likelihood); ``pairs_with`` names our family
    it is compared with; ``note`` says what the library cannot report (e.g. no NLL).
    """

    name: str
    pairs_with: str
    data: tuple[str, ...]
    build: Callable[[str], nn.Module]
    versions: Callable[[], dict[str, str]]
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str) -> dict[str, Any]:
    """CPU model, core count, torch threads, load average (1, 5, 15 min) and GPU name if any."""
    info: dict[str, Any] = {
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": loadavg(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def versions() -> dict[str, str]:
    """Versions of Python, torch, this package and numpy (``records.versions``), CUDA's and the checkout's
    commit where there are any (peers add their own)."""
    out = records.versions("numpy")
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
    commit = _git_commit()
    if commit:
        out["gdl-ref commit"] = commit
    return out


def _git_commit() -> str | None:
    """The checkout's commit (with '+changes' when the tree differs from it), or None outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+changes" if dirty else head


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------

def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()




def what_ran(history: Any) -> dict[str, Any]:
    """The optimisers' hyperparameters (name -> param_group values) and step counts from a ``History``.

    ``None`` where the training loop does not record them.
    """
    hparams = getattr(history, "hparams", None)
    steps = getattr(history, "optimizer_steps", None)
    return {"hparams": None if hparams is None else {name: {k: jsonable(v, fallback=repr) for k, v in group.items()}
                                                     for name, group in hparams.items()},
            "optimizer_steps": None if steps is None else {name: int(n) for name, n in steps.items()}}


def run_one(family: str, data: str, budget: Budget, *, seed: int = 0, device: str = "cpu",
            batch_size: int | None = None, eval_samples: int | None = None,
            peer: Peer | None = None, move: Move | None = None, sweep: bool = True) -> dict[str, Any]:
    """Train one (family or peer, data) pair under ``budget`` and score it on the test split.

    Training follows the family's recipe (``gdl_ref.train.recipe``: batch size, learning rate, EMA,
    early stopping on the val split); a peer gets the recipe of the family it pairs with, so both
    sides see the same data, batches and budget. ``batch_size`` replaces the recipe's. ``move`` (a toy
    only) trains and scores on the moved toy (``gdl_ref.data.Move``): the row's ``data`` is its label,
    e.g. ``moons ×10``; the paired KL is against the moved density, and the samples are moved back
    before their distances are measured, so those compare with the toy's own rows. ``sweep`` scores the
    family's other samplers too (``SAMPLER_SWEEPS``), where it has any.
    """
    from gdl_ref.data import dataset
    from gdl_ref.evaluate import bound_label, evaluate_density, evaluate_samples
    from gdl_ref.models import registry as families
    from gdl_ref.sampling import draw
    from gdl_ref.train import fit, recipe

    values = dataset(data, move)  # the splits (moved), the true density, the map back: made once
    torch.manual_seed(seed)
    model = peer.build(data) if peer is not None else families.build(family, data)
    recipe = {**recipe(family, data), **({"batch_size": batch_size} if batch_size else {})}
    result: dict[str, Any] = {
        "family": peer.pairs_with if peer else family,
        "model": peer.name if peer else families.label(model),
        "peer": peer is not None,
        "data": values.label,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": (loadavg() or [None])[0],  # the 1-minute load average as this run began
        "budget_seconds": budget.seconds,
        "budget_steps": budget.steps,
        "batch_size": recipe["batch_size"],
        "recipe": recipe,
        "bound": bound_label(model),
    }
    if peer is not None and peer.note:
        result["note"] = peer.note
    history = fit(model, values.train.clone(), val_data=values.val if recipe.get("patience") else None, seconds=budget.seconds,
                  steps=budget.steps, seed=seed, device=device, amp=device.startswith("cuda"), progress=False, **recipe)
    model.to(device)
    result["steps"] = int(history.steps)
    result.update(what_ran(history))
    result["train_seconds"] = float(history.seconds)
    result["stop_reason"] = history.stop_reason
    result["best_step"] = history.best_step
    result["train_examples_per_s"] = history.steps * recipe["batch_size"] / max(history.seconds, 1e-9)

    n = min(eval_samples or len(values.test), len(values.test))
    start = time.perf_counter()
    if move is not None:
        result.update(toy=data, move={"scale": move.scale, "shift": move.shift})
    if result["bound"] is not None:
        result.update(evaluate_density(model, values, examples=n, seed=seed + 1, device=device).to_dict())
    result["eval_seconds"] = time.perf_counter() - start

    _sync(device)
    start = time.perf_counter()
    samples = draw(model, n, seed=seed)  # (n, ...) on the CPU, batches of 512 under a fixed seed
    _sync(device)
    result["sample_seconds"] = time.perf_counter() - start
    result["sample_examples_per_s"] = n / max(result["sample_seconds"], 1e-9)
    result.update(evaluate_samples(samples, values, seed=seed).to_dict())
    variants = SAMPLER_SWEEPS.get(families.family_of(model) or "") if sweep else None
    if variants is not None:
        result["samplers"] = _sampler_sweep(model, variants(model.config), result, values, n, seed, device)
    return result


def _sampler_sweep(model: nn.Module, variants: dict[str, dict[str, Any]], default: dict[str, Any],
                   data: Dataset, n: int, seed: int, device: str) -> list[dict[str, Any]]:
    """Sample quality and speed of each sampler of ``variants`` (label -> ``sample`` keywords, ``SAMPLER_SWEEPS``).

    The first variant is the model's default sampler, already scored in ``default``; the others draw
    ``n`` samples each under the same seed.
    """
    from gdl_ref.evaluate import evaluate_samples
    from gdl_ref.sampling import draw

    rows = []
    for i, (label, kwargs) in enumerate(variants.items()):
        row: dict[str, Any] = {"sampler": label, **kwargs}
        if i == 0:
            keys = ("sample_seconds", "sample_examples_per_s", "sample_quality", "sample_quality_stderr",
                    "sample_quality_floor", "sample_quality_floor_sd")
            rows.append({**row, **{k: default[k] for k in keys}})
            continue
        _sync(device)
        start = time.perf_counter()
        samples = draw(model, n, seed=seed, **kwargs)
        _sync(device)
        row["sample_seconds"] = time.perf_counter() - start
        row["sample_examples_per_s"] = n / max(row["sample_seconds"], 1e-9)
        sampled = evaluate_samples(samples, data, seed=seed).to_dict()
        row.update({k: v for k, v in sampled.items() if k.startswith("sample_quality")})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# A whole benchmark
# ---------------------------------------------------------------------------------------------

def valid_families() -> list[str]:
    """The families of the registry, in its order."""
    from gdl_ref.models import registry as families

    return list(families.names())


def valid_data() -> list[str]:
    """digits and the 2-D toys (``gdl_ref.data.DATASETS``)."""
    return list(DATASETS)


def plan(family: str, data: list[str] | None) -> list[tuple[str, str]]:
    """The (family, data) pairs to run; ValueError listing valid choices for an unknown name."""
    names = valid_families()
    if family != "all" and family not in names:
        raise ValueError(f"unknown family {family!r}; valid: all, {', '.join(names)}")
    for d in data or []:
        if d not in valid_data():
            raise ValueError(f"unknown data {d!r}; valid: {', '.join(valid_data())}")
    chosen = names if family == "all" else [family]
    return [(f, d) for f in chosen for d in (data or DEFAULT_DATA.get(f, ("digits",)))]


def jobs(pairs: list[tuple[str, str]], seeds: tuple[int, ...] = (0,), peers: list[Peer] | None = None,
         moved: bool = False, peer_seeds: tuple[int, ...] | None = None,
         moved_seeds: tuple[int, ...] | None = None) -> list[Job]:
    """Every run of a benchmark, in the order of its tables: each pair once per seed, then each peer on the data
    of the family it pairs with once per ``peer_seeds``, then (``moved``) each scale-free 2-D density family
    (MOVED_FAMILIES) on every moved version of each of its toys (``gdl_ref.data.MOVES``) once per
    ``moved_seeds``; both default to ``seeds``. Only the first of ``seeds`` sweeps the samplers."""
    runs: list[tuple[str, str, str | None, Move | None, tuple[int, ...]]] = [(f, d, None, None, seeds)
                                                                             for f, d in pairs]
    for p in peers or []:
        runs += [(p.pairs_with, d, p.name, None, peer_seeds or seeds) for f, d in pairs
                 if f == p.pairs_with and d in p.data]
    if moved:
        runs += [(f, d, None, m, moved_seeds or seeds) for f, d in pairs if f in MOVED_FAMILIES and d in TOY_NAMES
                 for m in MOVES]
    return [Job(f, d, seed, peer, move, sweep=seed == seeds[0])
            for f, d, peer, move, chosen in runs for seed in chosen]


def default_peers_dir() -> Path:
    """``benchmarks/peers`` of the source checkout this module lives in, else of the working directory."""
    here = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"
    return here if here.is_dir() else Path.cwd() / "benchmarks" / "peers"


def load_peers(directory: Path) -> list[Peer]:
    """Import every ``*.py`` in ``directory`` and collect its ``PEERS`` list."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no peer adapters at {directory}: --peers needs a source checkout "
                                "(benchmarks/peers/) or --peers-dir")
    peers: list[Peer] = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"gdl_ref_peer_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except ImportError as err:
            raise ImportError(f"{path.name}: {err}; install the peers with "
                              "`pip install -r benchmarks/requirements.txt` and "
                              "`pip install --no-deps -r benchmarks/requirements-no-deps.txt`") from None
        peers.extend(getattr(module, "PEERS", []))
    return peers


def run_job(job: Job, budget: Budget, peers: dict[str, Peer], *, device: str = "cpu", batch_size: int | None = None,
            eval_samples: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``run_one`` for a job, logged; an exception becomes an error row (a broken family must not hide the others)."""
    log(f"bench: {job.label} ...")
    try:
        row = run_one(job.family, job.data, budget, seed=job.seed, device=device, batch_size=batch_size,
                      eval_samples=eval_samples, peer=peers[job.peer] if job.peer else None, move=job.move,
                      sweep=job.sweep)
    except Exception as err:
        row = {"family": job.family, "model": job.peer or "", "peer": job.peer is not None,
               "data": job.move.label(job.data) if job.move else job.data, "seed": job.seed, "device": device,
               "error": f"{type(err).__name__}: {err}"}
        if job.move is not None:
            row.update(toy=job.data, move={"scale": job.move.scale, "shift": job.move.shift})
    log(f"bench: {job.label} " + (f"failed: {row['error']}" if "error" in row else
                                  f"{row['steps']} steps in {row['train_seconds']:.1f} s"))
    return row


def bench(pairs: list[tuple[str, str]], budget: Budget | BudgetOf = recorded_budget, *,
          seeds: tuple[int, ...] = (0,), device: str = "cpu", batch_size: int | None = None,
          eval_samples: int | None = None, peers: list[Peer] | None = None, moved: bool = False,
          peer_seeds: tuple[int, ...] | None = None, moved_seeds: tuple[int, ...] | None = None,
          workers: int = 1, peers_dir: Path | None = None, done: dict[Job, dict[str, Any]] | None = None,
          on_row: Callable[[Job, dict[str, Any]], None] | None = None,
          log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every job of ``jobs(pairs, seeds, peers, moved, peer_seeds, moved_seeds)``; the rows come back in
    that order.

    ``budget`` is one :class:`Budget` for every run, or a function of (family, data) giving each run its
    own: by default the recorded step budgets (:func:`gdl_ref.bench.budgets.recorded_budget`). A job in
    ``done`` (job -> its row, from an interrupted run of the same command) is not run again; ``on_row`` is
    called with each job and its row as it finishes.

    With ``workers`` = 1 the runs go one at a time in this process with every torch thread. With more, they
    go ``workers`` at a time, each in its own process with one torch thread, the digits runs (the long ones)
    first: on 2 cores two one-thread runs make about 1.5 times the steps of one two-thread run, since these
    models are too small to keep two threads busy. Peers are imported again in each process from
    ``peers_dir``. A run's figures depend on its thread count only through float rounding.
    """
    budget_of: BudgetOf = budget if callable(budget) else (lambda family, data: budget)
    todo = jobs(pairs, seeds, peers, moved, peer_seeds, moved_seeds)
    by_name = {p.name: p for p in peers or []}
    options = {"device": device, "batch_size": batch_size, "eval_samples": eval_samples}
    rows = {i: done[job] for i, job in enumerate(todo) if done and job in done}
    left = sorted((i for i in range(len(todo)) if i not in rows), key=lambda i: todo[i].data in TOY_NAMES)
    finish = on_row or (lambda job, row: None)
    if workers == 1:
        for i in left:
            rows[i] = run_job(todo[i], budget_of(todo[i].family, todo[i].data), by_name, log=log, **options)
            finish(todo[i], rows[i])
    elif left:
        if peers and peers_dir is None:
            raise ValueError("workers > 1 with peers needs peers_dir: each process imports the peers again")
        for i, row in _run_in_workers([(i, todo[i], budget_of(todo[i].family, todo[i].data)) for i in left],
                                      workers, peers_dir if peers else None, log is not _silent, options):
            rows[i] = row
            finish(todo[i], row)
    return [rows[i] for i in range(len(todo))]


def _silent(_: str) -> None:
    """A log that says nothing (``--quiet``)."""


def _run_in_workers(todo: list[tuple[int, Job, Budget]], workers: int, peers_dir: Path | None, verbose: bool,
                    options: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each job in a pool of ``workers`` fresh processes (spawned, one torch thread each), started in the order
    given; yields (index, row) as each finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # not fork: the parent's thread pools do not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start,
                             initargs=(str(peers_dir) if peers_dir else None, verbose)) as pool:
        futures = {pool.submit(_worker_job, job, budget, options): i for i, job, budget in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


_WORKER: dict[str, Any] = {}  # in a worker process: its peers by name and its log


def _worker_start(peers_dir: str | None, verbose: bool) -> None:
    torch.set_num_threads(1)
    _WORKER["peers"] = {p.name: p for p in load_peers(Path(peers_dir))} if peers_dir else {}
    _WORKER["log"] = (lambda s: print(s, file=sys.stderr, flush=True)) if verbose else _silent


def _worker_job(job: Job, budget: Budget, options: dict[str, Any]) -> dict[str, Any]:
    return run_job(job, budget, _WORKER["peers"], log=_WORKER["log"], **options)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces a run of ``args`` (``--resume`` aside: it changes no figure)."""
    parts = ["gdl-ref", "bench", args.family]
    if args.data:
        parts += ["--data", ",".join(args.data)]
    for flag, value in (("--budget-seconds", args.budget_seconds), ("--toy-budget-seconds", args.toy_budget_seconds),
                        ("--budget-steps", args.budget_steps), ("--batch-size", args.batch_size),
                        ("--eval-samples", args.eval_samples), ("--threads", args.threads),
                        ("--workers", args.workers)):
        if value is not None:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    parts += ["--seeds", *(str(k) for k in args.seeds)]
    for flag, seeds in (("--peer-seeds", args.peer_seeds), ("--moved-seeds", args.moved_seeds)):
        if seeds is not None:
            parts += [flag, *(str(k) for k in seeds)]
    parts += ["--device", args.device]
    if args.moved:
        parts.append("--moved")
    if args.peers:
        parts.append("--peers")
    if args.json:
        parts += ["--json", str(args.json)]
    return shlex.join(parts)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, peers: list[Peer],
           machine: dict[str, Any], wall_seconds: float | None = None, sittings: int = 1,
           started_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON document of a run: when, where, what command, which versions, how long, the rows per seed
    and their summary (mean +- sd over seeds).

    ``machine`` is ``machine_info`` taken before the run; the load average after it is added here. A run
    resumed after an interruption (``--resume``) ran in ``sittings`` sittings; ``wall_seconds`` is their sum.
    ``started_versions`` is ``versions()`` taken as the run began, so that the commit is the one that ran even
    if the checkout changed while it ran.
    """
    machine = {**machine, "loadavg_end": loadavg()}
    vers = dict(started_versions) if started_versions is not None else versions()
    for p in peers:
        vers.update(p.versions())
    return {
        "schema": SCHEMA,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(args),
        "note": args.note or "",
        "machine": machine,
        "versions": vers,
        "seeds": list(args.seeds),
        "wall_seconds": wall_seconds,
        **({"sittings": sittings} if sittings > 1 else {}),
        "results": rows,
        "summary": aggregate(rows),
    }


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``gdl-ref bench`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench", help="train a family for a fixed budget and score it on the test split",
        description="Train FAMILY (or all) on the fixed train split for its budget in optimiser steps, "
                    "evaluate test NLL, bits/dim, the paired KL from the true density on toys and sample-quality "
                    "distances beside their floors, with standard errors; print tables and write JSON.")
    p.add_argument("family", metavar="FAMILY", help=f"one of {', '.join(valid_families())}, or all")
    p.add_argument("--data", action="append", metavar="DATA", type=lambda s: [d for d in s.split(",") if d],
                   help="data set(s), comma-separated: digits or a toy name (default: the family's list)")
    p.add_argument("--budget-steps", type=int, default=None, metavar="N",
                   help="optimiser steps per run, for every family (default: each family's recorded budget, "
                        "gdl_ref.bench.budgets.RECORDED_STEPS)")
    p.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                   help="a wall-clock budget per digits run instead (the figures then depend on the machine)")
    p.add_argument("--toy-budget-seconds", type=float, default=None, metavar="S",
                   help=f"with --budget-seconds: the budget per 2-D toy run (default min(S, {TOY_BUDGET_CAP:g}))")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="batch size of fit (default: each family's recipe, gdl_ref.train.recipe)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="K",
                   help="seeds of fit and of the evaluation: each pair runs once per seed, and the tables give "
                        "mean +- sd over seeds (default: 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--eval-samples", type=int, default=None, metavar="N",
                   help="score only the first N test examples and draw N samples (default: the whole test "
                        "split, 447 digits or 2,000 toy points); for smoke runs")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch.set_num_threads before training")
    p.add_argument("--moved", action="store_true",
                   help="also fit the scale-free 2-D density families (" + ", ".join(MOVED_FAMILIES) + ") on each "
                        "of their toys scaled by 0.1 and by 10 and shifted by 5 (gdl_ref.data.MOVES)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run N runs at a time, each in its own process with one torch thread, the digits runs "
                        "first (default 1: one at a time in this process with every thread)")
    p.add_argument("--peer-seeds", type=int, nargs="+", default=None, metavar="K",
                   help="the seeds of the peers' runs (default: --seeds)")
    p.add_argument("--moved-seeds", type=int, nargs="+", default=None, metavar="K",
                   help="the seeds of the --moved runs (default: --seeds)")
    p.add_argument("--peers", action="store_true",
                   help="also train the peer libraries' models (benchmarks/peers, benchmarks/requirements.txt)")
    p.add_argument("--peers-dir", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the results as JSON; each row is kept in FILE.partial.jsonl as it finishes, "
                        "until FILE is written")
    p.add_argument("--resume", action="store_true",
                   help="go on with the interrupted run of this command whose rows FILE.partial.jsonl holds: "
                        "only the jobs without a row there run")
    p.add_argument("--note", default=None, help="free text stored with the run (e.g. the machine's load)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=main)
    return p


def budgets(args: argparse.Namespace) -> BudgetOf:
    """The budget of each (family, data) run: the recorded step budgets unless a budget flag is given.

    With ``--budget-steps`` every run gets those steps; with ``--budget-seconds`` a digits run gets those
    seconds and a toy run ``--toy-budget-seconds`` or min(seconds, 60); given both, ``fit`` stops at the first.
    """
    steps, seconds = args.budget_steps, args.budget_seconds
    if steps is None and seconds is None and args.toy_budget_seconds is None:
        return recorded_budget
    toy_seconds = args.toy_budget_seconds or (min(seconds, TOY_BUDGET_CAP) if seconds else None)
    digits, toys = Budget(seconds, steps), Budget(toy_seconds, steps)
    return lambda family, data: toys if data in TOY_NAMES else digits


def _check_json(path: Path | None) -> None:
    """Before any training: ``--json FILE`` is not a folder, and its nearest existing ancestor is a writable folder."""
    if path is None:
        return
    if path.is_dir():
        fail(f"--json {path}: a folder, not a file")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:  # the folders that writing it will make
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(f"--json {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK):
        fail(f"--json {path}: {ancestor} is not writable")


@guarded("gdl-ref bench")
def main(args: argparse.Namespace) -> int:
    """Handler of ``gdl-ref bench``: 0 when every run finished, 1 when one failed or the run was refused,
    2 on bad arguments (``gdl_ref.cli_errors``)."""
    args.data = [d for group in args.data for d in group] if args.data else None
    for name in ("budget_seconds", "toy_budget_seconds", "budget_steps", "batch_size", "eval_samples", "threads",
                 "workers"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"argument --{name.replace('_', '-')}: must be positive, got {value}")
    if args.toy_budget_seconds is not None and args.budget_seconds is None:
        raise UsageError("argument --toy-budget-seconds: needs --budget-seconds (the digits runs' budget)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("argument --device: cuda, but torch.cuda.is_available() is False; valid here: cpu")
    for option, data in (("FAMILY", None), ("--data", args.data)):  # the family first, then its data sets
        try:
            pairs = plan(args.family, data)
        except ValueError as err:
            raise UsageError(f"argument {option}: {err}") from None
    _check_json(args.json)
    if args.resume and args.json is None:
        raise UsageError("argument --resume: needs --json FILE (the rows of the run it goes on with are in "
                         "FILE.partial.jsonl)")
    for option, value, needs, given in (("--peer-seeds", args.peer_seeds, "--peers", args.peers),
                                        ("--moved-seeds", args.moved_seeds, "--moved", args.moved)):
        if value is not None and not given:
            raise UsageError(f"argument {option}: needs {needs}")
    try:
        peers = load_peers(args.peers_dir or default_peers_dir()) if args.peers else []
    except (ImportError, FileNotFoundError) as err:
        raise Failure(str(err)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    budget_of = budgets(args)
    log = _silent if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    machine, started_versions = machine_info(args.device), versions()
    machine["workers"] = args.workers or 1
    if machine["workers"] > 1:
        machine["torch_threads"] = 1  # what each worker process sets (_worker_start)
    started = time.perf_counter()
    rowlog = None
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        try:
            rowlog = RowLog(partial_path(args.json), command_line(args), args.resume)
        except ValueError as err:
            raise Failure(str(err)) from None
        if rowlog.done:
            log(f"bench: resuming: {len(rowlog.done)} finished rows in {rowlog.path}")
    rows = bench(pairs, budget_of, seeds=tuple(args.seeds), device=args.device,
                 batch_size=args.batch_size, eval_samples=args.eval_samples, peers=peers, moved=args.moved,
                 peer_seeds=tuple(args.peer_seeds) if args.peer_seeds else None,
                 moved_seeds=tuple(args.moved_seeds) if args.moved_seeds else None,
                 workers=args.workers or 1, peers_dir=args.peers_dir or default_peers_dir(),
                 done=rowlog.done if rowlog else None, on_row=rowlog.add if rowlog else None, log=log)
    wall = rowlog.wall_seconds() if rowlog else time.perf_counter() - started
    doc = report(rows, args, peers, machine, wall_seconds=wall, sittings=rowlog.sittings if rowlog else 1,
                 started_versions=started_versions)
    print(tables(rows))
    if rowlog:
        args.json.write_text(json.dumps(doc, indent=2, default=jsonable) + "\n", encoding="utf-8")
        rowlog.close()
        log(f"bench: wrote {args.json}")
    return 1 if any("error" in r for r in rows) else 0
