"""The ``gdl-ref`` command: train a family, sample from a checkpoint, evaluate it; cards and benchmarks.

    gdl-ref train FAMILY [--data NAME] [--steps N] [--epochs N] [--seconds S] [--device cpu|cuda] [--out DIR]
                 [--force] [--checkpoint-every N|Ns]
    gdl-ref train --resume DIR [--steps N] [--epochs N] [--seconds S]
    gdl-ref sample CHECKPOINT --n N --out FILE [--force]
    gdl-ref evaluate CHECKPOINT

Exit status (``gdl_ref.cli_errors``): 0 done; 2 a usage error (an unknown family, data set or option, a bad
value, a missing argument), one line naming the argument; 1 any other error (a missing or corrupt checkpoint,
an output that exists, a run folder in use, a failed run), one line naming the file; 128 + the signal's number
when SIGINT or SIGTERM stopped training (a checkpoint to resume from is written first). ``GDL_REF_DEBUG=1``
prints the traceback of an error.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch

from gdl_ref import data as gdata
from gdl_ref import run_lock
from gdl_ref.cli_errors import ArgumentParser, Failure, UsageError, fail, run_main
from gdl_ref.evaluate import evaluate_model
from gdl_ref.models import registry as families
from gdl_ref.sampling import SAMPLE_MEMORY_LIMIT, SamplesTooLarge, check_fits, draw

__all__ = ["main", "build_parser", "save_samples"]

EPILOG = """examples:
  gdl-ref train flow --data moons --seconds 30 --out runs/flow-moons
  gdl-ref sample runs/flow-moons/checkpoint --n 1000 --out moons.png
  gdl-ref evaluate runs/flow-moons/checkpoint
"""


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a bare word is a string
    try:
        number = float(parsed)
    except (TypeError, ValueError):
        return key, parsed
    if not math.isfinite(number):  # 1e999, nan, inf: a config field that would never train
        raise argparse.ArgumentTypeError(f"{key}={value}: not a finite number")
    return key, parsed


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not (math.isfinite(value) and value > 0):  # NaN fails every comparison: test for it first
            raise argparse.ArgumentTypeError(f"must be a finite positive number, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _decay(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:  # False for NaN too
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text}")
    return value


def _every(text: str) -> str:
    from gdl_ref.train import parse_every

    try:
        parse_every(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N (steps) or Ns (seconds), both positive, got {text!r}") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``gdl-ref`` (cards and bench are added when their modules are present)."""
    parser = ArgumentParser(
        prog="gdl-ref", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generative deep learning reference models: train a family on the embedded digits or a "
                    "2-D toy, draw samples, evaluate likelihood and sample quality; check and export the cards.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    train = sub.add_parser("train", help="train a family; write a checkpoint, metrics JSON and a sample grid",
                           description="Train FAMILY on --data with the shared fit() loop; then write DIR/checkpoint, "
                                       "DIR/metrics.json (test NLL, bits/dim, sample quality and its floor) and "
                                       "DIR/samples.png. Budgets combine: training stops at the first one reached.")
    train.add_argument("family", nargs="?", choices=families.names(), metavar="FAMILY",
                       help=f"one of: {', '.join(families.names())} (not needed with --resume)")
    train.add_argument("--data", default=None, choices=families.datasets(), metavar="NAME",
                       help=f"data set: {', '.join(families.datasets())} (default: digits)")
    train.add_argument("--steps", type=_positive(int), metavar="N", help="optimiser steps")
    train.add_argument("--epochs", type=_positive(int), metavar="N", help="passes over the train split")
    train.add_argument("--seconds", type=_positive(float), metavar="S",
                       help="wall-clock seconds (default 60 when no budget is given)")
    train.add_argument("--batch-size", type=_positive(int), default=None, metavar="B",
                       help="batch size (default: the family's recipe, see gdl_ref.train.recipe)")
    train.add_argument("--lr", type=_positive(float), default=None, help="learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, default=None, help="seed of weights, data order and samples (default 0)")
    train.add_argument("--ema", type=_decay, default=None, metavar="DECAY",
                       help="keep an EMA of the weights (e.g. 0.999); evaluate and save it (default: the recipe's)")
    train.add_argument("--clip-grad", type=_positive(float), default=None, metavar="NORM",
                       help="clip the gradient norm to NORM")
    train.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    train.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field of the family, e.g. --set hidden=128 (repeatable)")
    train.add_argument("--samples", type=_positive(int), default=None, metavar="N",
                       help="samples for the quality scores (default: the test split's size)")
    train.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: runs/FAMILY-DATA); "
                                                                  "an existing run there is refused without --force")
    train.add_argument("--force", action="store_true", help="replace the run in --out")
    train.add_argument("--resume", type=Path, metavar="DIR",
                       help="continue the run in DIR (its settings; a budget given here is the new total)")
    train.add_argument("--checkpoint-every", type=_every, default=None, metavar="N|Ns",
                       help="also write the checkpoint every N steps or N seconds (e.g. 100 or 30s)")
    _common(train, seed=False)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG, .npy or .pt file",
                            description="Draw N samples from the model in CHECKPOINT (a folder written by train) "
                                        "and save them: FILE.png as a grid (digits) or scatter plot (toys), "
                                        "FILE.npy or FILE.pt as an array.")
    sample.add_argument("checkpoint", metavar="CHECKPOINT")
    sample.add_argument("--n", type=_positive(int), default=64, help="number of samples (default 64)")
    sample.add_argument("--out", type=Path, required=True, metavar="FILE", help="FILE.png, FILE.npy or FILE.pt")
    sample.add_argument("--force", action="store_true", help="replace FILE if it exists")
    _common(sample)
    sample.set_defaults(func=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="print a checkpoint's test NLL and sample-quality scores",
                              description="Evaluate the model in CHECKPOINT on the test split: NLL in nats per "
                                          "example with its standard error (bits/dim on digits, the paired KL "
                                          "from the true density on toys) and sample quality with bootstrap "
                                          "standard errors beside its floor (mean +- sd over random train subsets).")
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT")
    evaluate.add_argument("--samples", type=_positive(int), default=None, metavar="N",
                          help="samples for the quality scores (default: the test split's size)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    from gdl_ref.bench import add_parser as add_bench

    add_bench(sub)
    _add_installed_commands(sub)
    return parser


COMMANDS_GROUP = "gdl_ref.commands"  # entry points: name -> a function that registers the subcommand


def _add_installed_commands(sub: Any) -> None:
    """Register the subcommands that other installed packages declare in the ``gdl_ref.commands`` group.

    Each entry point names a function ``add_parser(subparsers)``. One whose package cannot be imported
    (an extra that is not installed) still appears, and running it says what to install.
    """
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        if entry.name in sub.choices:
            continue
        try:
            add = entry.load()
        except ModuleNotFoundError as err:
            stand_in = sub.add_parser(entry.name, help=f"(not installed here: needs {err.name})", add_help=False)
            stand_in.add_argument("rest", nargs=argparse.REMAINDER)
            stand_in.set_defaults(func=_needs_extra(entry.name, err.name or "a package"))
            continue
        add(sub)


def _needs_extra(command: str, missing: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise MissingExtra(f"`gdl-ref {command}` needs {missing}, which the docs extra installs: "
                           "pip install -e '.[docs]' -c constraints.txt")

    return run


class MissingExtra(Failure):
    """A subcommand whose package needs an optional dependency that is not installed."""


def _common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")


def _device(name: str) -> str:
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:")):
        raise UsageError(f"argument --device: unknown device {name!r}; valid: cpu, cuda, cuda:N")
    if name != "cpu" and not torch.cuda.is_available():
        raise UsageError(f"argument --device: {name}, but torch.cuda.is_available() is False; valid here: cpu")
    return name


# ---------------------------------------------------------------------------------------------
# Evaluation and pictures, shared by train and evaluate
# ---------------------------------------------------------------------------------------------

def _train_data(model: torch.nn.Module, data: gdata.Dataset, split: str) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """The split as the model's loss takes it: (images, labels) for class-conditional models."""
    if getattr(getattr(model, "config", None), "conditional", False):
        if data.labels is None:
            raise UsageError(f"argument --data: a class-conditional model needs labels: only digits has them, not {data.name!r}")
        return data.split(split), data.labels[split]
    return data.split(split)


def save_samples(samples: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Write samples: .png (an image grid for digits, a scatter plot for 2-D points), .npy or .pt."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        np.save(path, samples.numpy())
    elif suffix == ".pt":
        torch.save(samples, path)
    elif suffix == ".png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if samples.ndim == 4:  # (N, 1, 8, 8) digits: a grid of at most 8 x 8 images
            k = min(len(samples), 64)
            cols = min(8, k)
            rows = math.ceil(k / cols)
            grid = torch.full((rows * 9 - 1, cols * 9 - 1), math.nan)  # NaN: the gaps between images
            for i in range(k):
                r, c = divmod(i, cols)
                grid[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = samples[i, 0].float()
            fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
            cmap = plt.get_cmap("gray_r").with_extremes(bad="#c8c8d8")
            ax.imshow(grid.numpy(), cmap=cmap, vmin=0, vmax=gdata.DIGIT_LEVELS - 1)
        else:  # (N, 2) points
            fig, ax = plt.subplots(figsize=(4, 4))
            xy = samples.double().numpy()
            ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.5)
            ax.set_xlim(-3, 3), ax.set_ylim(-3, 3), ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
    else:
        raise UsageError(f"unknown output type {path.suffix!r} for {path}; valid: .png, .npy, .pt")
    return path


SAMPLE_TYPES = (".png", ".npy", ".pt")  # the files save_samples writes
_GROUPS = ("sample_quality", "sample_quality_stderr", "sample_quality_floor", "sample_quality_floor_sd", "val", "train")


def _print_metrics(result: dict[str, Any]) -> None:
    """One line a figure: a standard error beside each estimate, the floor (mean +- sd) beside each distance."""
    for key, value in result.items():
        if key in _GROUPS or key == "hparams" or key.endswith("_stderr"):
            continue
        se = result.get(f"{key}_stderr")
        text = f"{value:.4f}" if isinstance(value, float) else f"{value}"
        print(f"{key:>20}: {text}" + (f" +- {se:.4f}" if isinstance(se, float) else ""))
    if result.get("kl_negative"):
        print(f"{'':>20}  the KL estimate is below zero by more than its standard error: a finite test sample")
    se, floor, sd = (result.get(k, {}) for k in _GROUPS[1:4])
    for key, value in result.get("sample_quality", {}).items():
        extra = f"   (floor {floor[key]:.4f} +- {sd[key]:.4f})" if key in floor else ""
        print(f"{key:>20}: {value:.4f} +- {se.get(key, float('nan')):.4f}{extra}")


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------

RUN_FILES = ("checkpoint", "metrics.json", "samples.png")  # what train writes into --out
RUN_SETTINGS = ("family", "data", "batch_size", "lr", "ema", "clip_grad", "seed", "amp", "overrides")


def _check_out(out: Path, force: bool) -> None:
    """Before any training: --out is a folder (or a new path) that can be written, holding no run unless --force."""
    from gdl_ref.checkpoint import is_checkpoint

    if out.exists() and not out.is_dir():
        fail(f"--out {out}: a file, not a folder")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not force:
        fail(f"--out {out} holds a run ({', '.join(held)}); pass --force to replace it, or "
                         f"--resume {out} to continue it")
    ckpt = out / "checkpoint"
    if ckpt.exists() and not (ckpt.is_dir() and (is_checkpoint(ckpt) or not any(ckpt.iterdir()))):
        fail(f"--out {out}: {ckpt} is not a checkpoint folder; not replacing it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise Failure(f"--out {out}: not writable ({err.strerror or err})") from None
    for name in held:  # --force: the old metrics and picture would describe another model
        if name != "checkpoint":
            (out / name).unlink()


def _resume_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run record of ``--resume DIR``; options given with it must agree with the run's settings."""
    from gdl_ref.checkpoint import load_checkpoint

    folder = args.resume / "checkpoint"
    if not args.resume.is_dir():
        fail(f"--resume {args.resume}: no such run folder")
    try:
        meta = load_checkpoint(folder).meta
    except (FileNotFoundError, ValueError) as err:
        raise Failure(str(err)) from None
    run = meta.get("run")
    if not isinstance(run, dict):
        fail(f"{folder / 'meta.json'}: not written by gdl-ref train (no 'run' entry); "
                         f"continue it from Python with fit(..., resume={str(folder)!r})")
    if args.out is not None and args.out.resolve() != args.resume.resolve():
        raise UsageError(f"argument --out: {args.out} and --resume {args.resume} differ: a resumed run writes into its own folder")
    saved = {**run, "overrides": dict(run["overrides"])}
    given = {k: getattr(args, k) for k in RUN_SETTINGS}
    given["overrides"], given["amp"] = dict(args.overrides) or None, args.amp or None
    for key, value in given.items():
        if value is not None and json.loads(json.dumps(value)) != saved[key]:  # as JSON: tuples are lists there
            option = {"family": "family", "overrides": "--set"}.get(key, f"--{key.replace('_', '-')}")
            raise UsageError(f"argument {option}: {value} differs from the run's {saved[key]} ({folder / 'meta.json'}); "
                             f"a resumed run keeps its settings")
    return run


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """SIGINT and SIGTERM ask training to stop after the current step; a second one stops at once."""
    caught: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        yield caught
        return

    def handler(signum: int, frame: object) -> None:
        if caught:
            raise KeyboardInterrupt
        caught["signal"] = signum
        print(f"\n{signal.Signals(signum).name}: finishing this step, then writing a checkpoint "
              f"(send it again to stop at once, without one)", file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _write_text(path: Path, text: str) -> None:
    """Write a file by replacing it in one rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cmd_train(args: argparse.Namespace) -> int:
    """Train in the run folder, holding its run lock throughout (another run into it is refused at once)."""
    if args.resume is not None:
        out = args.resume
    else:
        out = args.out or Path("runs") / f"{args.family}-{args.data or 'digits'}"
    named = args.resume is not None or args.family is not None
    folder = out.is_dir() or not (args.resume is not None or out.exists())  # else the checks name what is there
    created = not out.exists()
    try:
        with ExitStack() as stack:
            if named and folder and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 writes the run
                try:
                    stack.enter_context(run_lock.hold(out / "checkpoint"))
                except OSError:
                    pass  # an --out that cannot be made or written: _check_out names it
            return _train(args, out)
    except run_lock.FolderInUse as err:  # another process trains into this folder: a refused run
        if created:
            _remove_if_empty(out)
        raise Failure(str(err)) from None
    except BaseException:
        if created:  # a run refused before it wrote anything leaves no empty folder behind
            _remove_if_empty(out)
        raise


def _remove_if_empty(out: Path) -> None:
    """Remove ``out`` if it holds nothing but the run's lock file."""
    try:
        left = list(out.iterdir())
        if all(p == run_lock.lock_path(out / "checkpoint") for p in left):
            for p in left:
                p.unlink()
            out.rmdir()
    except OSError:
        pass  # not ours to tidy any more (another process wrote into it)


def _train(args: argparse.Namespace, out: Path) -> int:
    from gdl_ref.checkpoint import update_meta
    from gdl_ref.train import fit, recipe

    device = _device(args.device)
    budget = {"steps": args.steps, "epochs": args.epochs, "seconds": args.seconds}
    if args.resume is not None:
        run = _resume_settings(args)
        if all(v is None for v in budget.values()):
            budget = run["budget"]
        every = args.checkpoint_every or run.get("checkpoint_every")
        samples = args.samples or run.get("samples")
    else:
        if args.family is None:
            raise UsageError("argument FAMILY: give a FAMILY to train, or --resume DIR to continue a run")
        args.data = args.data or "digits"
        args.seed = 0 if args.seed is None else args.seed
        given = {"batch_size": args.batch_size, "lr": args.lr, "ema_decay": args.ema, "clip_grad": args.clip_grad}
        run = {**{k: getattr(args, k) for k in RUN_SETTINGS}, "overrides": dict(args.overrides),
               "recipe": {**recipe(args.family, args.data), **{k: v for k, v in given.items() if v is not None}}}
        _check_out(out, args.force)
        if all(v is None for v in budget.values()):
            budget["seconds"] = 60.0
        every, samples = args.checkpoint_every, args.samples
    run.update(budget=budget, checkpoint_every=every, samples=samples)
    family, data_name, seed = run["family"], run["data"], run["seed"]
    torch.manual_seed(seed)
    try:
        overrides = families.fields_from_json(family, data_name, run["overrides"])  # JSON's lists as tuples
        model = families.build(family, data_name, **overrides)
    except (TypeError, ValueError) as err:
        raise UsageError(f"argument {'--set' if run['overrides'] else '--data'}: {err}") from None
    values = gdata.dataset(data_name)  # made once: training, the samples' count and the evaluation share it
    train, val = _train_data(model, values, "train"), _train_data(model, values, "val")
    print(f"{'resuming' if args.resume else 'training'} {family} ({type(model).__name__}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters) on {data_name} -> {out}", file=sys.stderr)
    with _stop_on_signals() as caught:
        history = fit(model, train, val_data=val, **budget, seed=seed, device=device, amp=run["amp"],
                      progress=not args.no_progress, checkpoint_dir=out / "checkpoint", checkpoint_every=every,
                      resume=out / "checkpoint" if args.resume else None, should_stop=lambda: bool(caught),
                      meta={"family": family, "data": data_name, "run": run}, **run["recipe"])
    if history.stop_reason == "interrupted":
        name = signal.Signals(caught["signal"]).name
        print(f"{name}: stopped after step {history.steps}; the checkpoint is in {out / 'checkpoint'}. "
              f"Continue with:\n  gdl-ref train --resume {shlex.quote(str(out))}", file=sys.stderr)
        return 128 + caught["signal"]
    drawn = draw(model, samples or len(values.test), seed=seed)
    result = {"family": family,
              **evaluate_model(model, values, seed=seed, device=device, drawn=drawn).to_dict(),
              "steps": history.steps, "train_seconds": history.seconds, "stop_reason": history.stop_reason,
              "best_val": history.best_val, "val": history.val, "hparams": history.hparams,
              "optimizer_steps": history.optimizer_steps}
    _write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    update_meta(out / "checkpoint", metrics={k: v for k, v in result.items() if k != "val"})
    save_samples(drawn, out / "samples.png", title=f"{family} on {data_name}, {history.steps} steps")
    _print_metrics(result)
    print(f"wrote {out / 'checkpoint'}, {out / 'metrics.json'}, {out / 'samples.png'}", file=sys.stderr)
    return 0


def _load(path: str, device: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    from gdl_ref.checkpoint import load_model, read_meta

    if not Path(path).exists():
        fail(f"no such checkpoint: {path}")
    try:  # neither reads train_state.pt or resume.safetensors: only --resume needs them
        return load_model(path, device=device), read_meta(path)
    except (FileNotFoundError, ValueError, TypeError) as err:
        raise Failure(str(err)) from None


def cmd_sample(args: argparse.Namespace) -> int:
    device = _device(args.device)
    if args.out.suffix.lower() not in SAMPLE_TYPES:
        raise UsageError(f"argument --out: unknown output type {args.out.suffix!r} for {args.out}; "
                         f"valid: {', '.join(SAMPLE_TYPES)}")
    if args.out.exists() and not args.force:
        fail(f"--out {args.out} exists; pass --force to replace it")
    model, meta = _load(args.checkpoint, device)
    try:
        check_fits(model, args.n, SAMPLE_MEMORY_LIMIT)  # before drawing: refuse what would not fit
    except SamplesTooLarge as err:
        raise UsageError(f"argument --n: {err}") from None
    samples = draw(model, args.n, seed=args.seed, progress=True)
    save_samples(samples, args.out, title=f"{meta.get('family')} on {meta.get('data')}")
    print(f"wrote {args.n} samples {tuple(samples.shape[1:])} to {args.out}", file=sys.stderr)
    return 0


def _dataset_of(meta: dict[str, Any], checkpoint: str) -> gdata.Dataset:
    """The data set a checkpoint's model was trained on, from its ``meta.json``."""
    try:
        return gdata.dataset(meta["data"])
    except (KeyError, ValueError) as err:
        raise Failure(f"{Path(checkpoint) / 'meta.json'}: names no known data set ({err})") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    device = _device(args.device)
    model, meta = _load(args.checkpoint, device)
    result = {"family": meta.get("family"), "step": meta.get("step"),
              **evaluate_model(model, _dataset_of(meta, args.checkpoint), samples=args.samples, seed=args.seed,
                               device=device).to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_metrics(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``gdl-ref`` with ``argv`` (default: sys.argv[1:]) and return the exit status (``gdl_ref.cli_errors``)."""
    return run_main(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
