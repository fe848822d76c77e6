"""Tests for the gdl-ref command: help, clear usage errors, and train -> sample -> evaluate."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import ROOT, register_family
from gdl_ref import cli, data
from gdl_ref.likelihood import Bound

torch.set_num_threads(1)


@dataclasses.dataclass
class PixelsConfig:
    data: str = "digits"
    temperature: float = 1.0


class IndependentPixels(nn.Module):
    """An independent categorical per pixel: log p(x) = sum_d log softmax(theta_d)[x_d] (exact NLL)."""

    bound = Bound.EXACT

    def __init__(self, config: PixelsConfig) -> None:
        super().__init__()
        self.config = config
        self.logits = nn.Parameter(torch.zeros(data.DIGIT_DIMS, data.DIGIT_LEVELS))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logp = self.logits.log_softmax(-1)  # (64, 17)
        return logp.gather(1, x.flatten(1).T).sum(0)  # (B,)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(x).mean()

    def sample(self, n: int) -> torch.Tensor:
        probs = (self.logits / self.config.temperature).softmax(-1)
        return torch.multinomial(probs, n, replacement=True).T.reshape(n, *data.DIGIT_SHAPE)


@pytest.fixture
def pixels_family(monkeypatch):
    """Register the test model as family "pixels" (the family modules are tested on their own)."""
    def build(name: str, **overrides: object) -> IndependentPixels:
        if name != "digits":
            raise ValueError(f"unknown data {name!r}; valid: digits")
        return IndependentPixels(PixelsConfig(data=name, **overrides))

    yield from register_family(monkeypatch, "pixels", build, IndependentPixels)


def test_help_reads_well(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("train", "sample", "evaluate", "examples:", "gdl-ref train flow --data moons"):
        assert word in out
    assert cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "autoregressive, flow, vae, diffusion, gan, ebm" in out and "--seconds" in out


@pytest.mark.parametrize("argv, expected", [
    (["train", "pixelrnn"], "invalid choice: 'pixelrnn' (choose from 'autoregressive', 'flow'"),
    (["train", "flow", "--data", "cifar"], "invalid choice: 'cifar' (choose from 'digits', 'moons'"),
    (["train", "flow", "--frobnicate"], "unrecognized arguments: --frobnicate; valid options: --amp, --batch-size"),
    (["train", "flow", "--steps", "0"], "must be a finite positive number"),
    (["train", "flow", "--device", "tpu"], "unknown device 'tpu'; valid: cpu, cuda, cuda:N"),
    (["train", "flow", "--set", "nonsense=3", "--steps", "1"], "nonsense"),
    (["sample", "x"], "the following arguments are required: --out"),
    (["launch"], "invalid choice: 'launch'"),
])
def test_usage_errors_are_clear_with_exit_2(capsys, argv, expected):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1, err


def test_cards_without_the_docs_extra_says_what_to_install(monkeypatch, capsys):
    """`gdl-ref cards` comes from the site's package through an entry point; without its dependencies
    (the docs extra) the command is still listed, and running it names what is missing and how to install it."""
    names = set(next(a for a in cli.build_parser()._actions if a.dest == "command").choices)
    assert {"train", "sample", "evaluate", "bench", "cards"} <= names
    for name in [m for m in sys.modules if m == "gdl_site" or m.startswith("gdl_site.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "latex2mathml", None)  # as if the docs extra were not installed
    monkeypatch.setitem(sys.modules, "latex2mathml.converter", None)
    assert cli.main(["cards", "check", "docs"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "latex2mathml" in err and "pip install -e '.[docs]'" in err, err


SITE_DEPENDENCIES = ("genanki", "markdown", "latex2mathml", "nh3", "mkdocs", "pymdownx", "yaml", "nbclient")


def test_the_reference_package_needs_none_of_the_sites_dependencies():
    """No module of src/gdl_ref imports a dependency of the docs extra, and the install needs none of them."""
    import ast
    import tomllib

    found = []
    for path in sorted((ROOT / "src" / "gdl_ref").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in SITE_DEPENDENCIES]
    assert not found, "\n".join(found)
    required = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert not [r for r in required if r.split(">")[0].split("=")[0].strip().lower() in SITE_DEPENDENCIES + ("pyyaml",)]


def test_train_and_sample_run_with_the_sites_dependencies_blocked(tmp_path):
    """`gdl-ref train` and `sample` in a process where importing any of the docs extra's packages fails."""
    blocker = (
        "import sys, importlib.abc\n"
        f"BLOCKED = {set(SITE_DEPENDENCIES)!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'blocked: {name}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from gdl_ref.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run = [sys.executable, "-c", blocker]
    out = tmp_path / "flow"
    train = subprocess.run([*run, "train", "flow", "--data", "moons", "--steps", "5", "--out", str(out), "--no-progress"],
                           capture_output=True, text=True, check=False)
    assert train.returncode == 0, train.stderr
    sample = subprocess.run([*run, "sample", str(out / "checkpoint"), "--n", "16", "--out", str(tmp_path / "s.npy")],
                            capture_output=True, text=True, check=False)
    assert sample.returncode == 0, sample.stderr
    cards = subprocess.run([*run, "cards", "check"], capture_output=True, text=True, check=False)
    assert cards.returncode == 1 and "pip install -e '.[docs]'" in cards.stderr, cards.stderr


def test_digits_train_then_evaluate_from_an_empty_cache(tmp_path):
    """The README's digits path on a machine that never ran the project: the session cache is empty when
    this test runs (conftest runs it first), so `evaluate` trains the feature classifier from scratch."""
    cache = Path(os.environ["GDL_REF_CACHE"])
    assert not (cache / "digit-classifier.safetensors").exists(), "this test must run first, on an empty cache"
    run = [sys.executable, "-m", "gdl_ref.cli"]
    out = tmp_path / "vae"
    # iwae_k=50 instead of 1,000 importance samples: the same code path, a twentieth of the evaluation's cost
    train = subprocess.run([*run, "train", "vae", "--data", "digits", "--steps", "30", "--set", "iwae_k=50",
                            "--out", str(out), "--no-progress"], capture_output=True, text=True, check=False)
    assert train.returncode == 0, train.stderr
    evaluate = subprocess.run([*run, "evaluate", str(out / "checkpoint"), "--json"], capture_output=True,
                              text=True, check=False)
    assert evaluate.returncode == 0, evaluate.stderr
    printed = json.loads(evaluate.stdout)
    assert math.isfinite(printed["test_nll"]) and printed["test_nll"] > 0
    assert {"fd", "kd", "mmd", "one_nn"} <= set(printed["sample_quality"])
    assert all(math.isfinite(v) for v in printed["sample_quality"].values())
    assert (cache / "digit-classifier.safetensors").is_file()  # trained once, kept for the rest of the session


def test_round_trip_train_sample_evaluate(tmp_path, capsys, pixels_family):
    out = tmp_path / "run"
    assert cli.main(["train", "pixels", "--steps", "60", "--lr", "0.1", "--out", str(out), "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == {"checkpoint", "metrics.json", "samples.png"}
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["family"] == "pixels" and metrics["steps"] == 60 and metrics["bound"] == "exact"
    assert metrics["test_nll"] < 64 * math.log(17)  # better than uniform after 60 steps
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_nll"] / (64 * math.log(2)))
    assert set(metrics["sample_quality"]) == {"fd", "kd", "mmd", "one_nn"} == set(metrics["sample_quality_floor"])
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["metrics"]["test_nll"] == metrics["test_nll"] and meta["data"] == "digits"
    capsys.readouterr()

    assert cli.main(["sample", str(out / "checkpoint"), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (10, 1, 8, 8) and s.min() >= 0 and s.max() <= 16
    assert cli.main(["sample", str(out / "checkpoint"), "--n", "10", "--out", str(tmp_path / "s.png")]) == 0
    kept = (tmp_path / "s.npy").read_bytes()
    assert cli.main(["sample", str(out / "checkpoint"), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 1
    assert f"--out {tmp_path / 's.npy'} exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "s.npy").read_bytes() == kept
    assert cli.main(["sample", str(out / "checkpoint"), "--n", "5", "--out", str(tmp_path / "s.npy"), "--force"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 8, 8)
    assert cli.main(["sample", str(out / "checkpoint"), "--n", "10", "--out", str(tmp_path / "s.gif")]) == 2
    assert "valid: .png, .npy, .pt" in capsys.readouterr().err

    assert cli.main(["evaluate", str(out / "checkpoint"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test_nll"] == pytest.approx(metrics["test_nll"]) and printed["step"] == 60
    assert printed["sample_quality"] == pytest.approx(metrics["sample_quality"])
    assert cli.main(["evaluate", str(out / "checkpoint")]) == 0
    table = capsys.readouterr().out
    assert "test_bits_per_dim" in table and "(floor" in table


def test_train_reports_a_failing_run_without_traceback(tmp_path, capsys, pixels_family, monkeypatch):
    monkeypatch.setattr(IndependentPixels, "loss", lambda self, x: self.logits.sum() * math.nan)
    assert cli.main(["train", "pixels", "--steps", "2", "--out", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "FloatingPointError" in err and "Traceback" not in err


@pytest.mark.slow
def test_round_trip_with_a_real_family_on_toys(tmp_path, capsys):
    out = tmp_path / "flow"
    assert cli.main(["train", "flow", "--data", "8gaussians", "--steps", "5", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_nll", "entropy", "kl", "kl_stderr", "sample_quality", "sample_quality_stderr"} <= set(metrics)
    assert {"modes_covered", "high_quality_share"} <= set(metrics["sample_quality"])
    assert cli.main(["evaluate", str(out / "checkpoint"), "--json"]) == 0


# ----------------------------------------------------------------------------- runs that are safe to stop and to repeat

@pytest.mark.parametrize("argv, option", [
    (["--seconds", "nan"], "--seconds"),
    (["--seconds", "inf"], "--seconds"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-inf"], "--lr"),
    (["--clip-grad", "nan"], "--clip-grad"),
    (["--ema", "nan"], "--ema"),
    (["--ema", "1.5"], "--ema"),
    (["--set", "beta=1e999"], "--set"),
    (["--set", "beta=nan"], "--set"),
    (["--checkpoint-every", "nans"], "--checkpoint-every"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
])
def test_non_finite_options_are_refused_by_name(capsys, argv, option):
    assert cli.main(["train", "flow", *argv]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: the checks must come before it."""
    from gdl_ref import train

    @functools.wraps(train.fit)  # the same signature: recipes read fit's defaults from it
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train, "fit", refuse)


def test_out_is_checked_before_training(tmp_path, capsys, pixels_family, no_training):
    (tmp_path / "file").write_text("mine")
    cases = [(tmp_path / "file", "a file, not a folder"), (tmp_path / "file" / "run", "not writable")]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text("{}")
    cases.append((tmp_path / "old", "holds a run (metrics.json); pass --force to replace it, or --resume"))
    (tmp_path / "odd" / "checkpoint").mkdir(parents=True)
    (tmp_path / "odd" / "checkpoint" / "notes.txt").write_text("mine")
    cases.append((tmp_path / "odd", "is not a checkpoint folder; not replacing it"))
    for out, message in cases:
        assert cli.main(["train", "pixels", "--steps", "1", "--out", str(out), "--force"
                         if "odd" in str(out) else "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"--out {out}" in err and message in err, err
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "old" / "metrics.json").read_text() == "{}"


def _weights(run) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoint" / "model.safetensors"))


def _interrupt_at(monkeypatch, step: int, signum: int) -> None:
    """The test model sends ``signum`` to its own process during training step ``step`` (counted from 1)."""
    calls = []
    loss = IndependentPixels.loss

    def interrupting(self, x):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signum)
        return loss(self, x)

    monkeypatch.setattr(IndependentPixels, "loss", interrupting)


def test_resume_through_the_cli_equals_one_run(tmp_path, capsys, pixels_family, monkeypatch):
    """10 + 10 steps equal 20 steps, whether the first run ended on its budget or on SIGINT or SIGTERM."""
    common = ["--lr", "0.05", "--samples", "64", "--no-progress"]
    assert cli.main(["train", "pixels", "--steps", "20", "--out", str(tmp_path / "straight"), *common]) == 0
    assert cli.main(["train", "pixels", "--steps", "10", "--out", str(tmp_path / "budget"), *common]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "budget"), "--steps", "20", "--no-progress"]) == 0
    for name, signum in (("sigint", signal.SIGINT), ("sigterm", signal.SIGTERM)):
        run = tmp_path / name
        with monkeypatch.context() as m:
            _interrupt_at(m, 11, signum)  # during step 11: that step finishes, then the run stops
            capsys.readouterr()
            assert cli.main(["train", "pixels", "--steps", "20", "--out", str(run), *common]) == 128 + signum
        err = capsys.readouterr().err
        assert f"stopped after step 11" in err and f"gdl-ref train --resume {run}" in err
        assert json.loads((run / "checkpoint" / "meta.json").read_text())["step"] == 11
        assert not (run / "metrics.json").exists()
        assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0  # the run's own budget: 20
    straight = _weights(tmp_path / "straight")
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    for name in ("budget", "sigint", "sigterm"):
        resumed = _weights(tmp_path / name)
        assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in straight)
        again = json.loads((tmp_path / name / "metrics.json").read_text())
        assert again["steps"] == 20 and again["test_nll"] == metrics["test_nll"] and again["samples"] == 64
        assert again["sample_quality"] == metrics["sample_quality"]  # the run's --samples, drawn alike
        assert again["optimizer_steps"] == {"model": 20} and again["hparams"]["model"]["lr"] == 0.05


def test_resume_keeps_the_runs_settings(tmp_path, capsys, pixels_family):
    run = tmp_path / "run"
    assert cli.main(["train", "pixels", "--steps", "2", "--lr", "0.05", "--samples", "16", "--out", str(run),
                     "--no-progress"]) == 0
    before = (run / "checkpoint" / "model.safetensors").read_bytes()
    capsys.readouterr()
    meta_file = run / "checkpoint" / "meta.json"
    for argv, message in [
        (["--lr", "0.1"], f"argument --lr: 0.1 differs from the run's 0.05 ({meta_file})"),
        (["flow"], "argument family: flow differs from the run's pixels"),
        (["--set", "temperature=2.0"], "argument --set: {'temperature': 2.0} differs"),
        (["--out", str(tmp_path / "elsewhere")], "a resumed run writes into its own folder"),
    ]:
        assert cli.main(["train", *argv, "--resume", str(run), "--steps", "4"]) == 2
        assert message in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    assert "no such run folder" in capsys.readouterr().err
    assert cli.main(["train", "pixels", "--out", str(run), "--steps", "1"]) == 1  # an existing run, no --force
    assert "--resume" in capsys.readouterr().err
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == before
    data = bytearray(before)
    data[-5] ^= 0xFF
    (run / "checkpoint" / "model.safetensors").write_bytes(bytes(data))
    assert cli.main(["train", "--resume", str(run), "--steps", "4"]) == 1
    assert f"{run / 'checkpoint' / 'model.safetensors'}: SHA-256" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_to_a_training_subprocess_leaves_a_run_that_resumes_identically(tmp_path):
    """A real SIGINT from outside, at whatever step the run has reached, then --resume: the same weights as
    one run of as many steps."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gdl_ref.cli", "train", "flow", "--data", "moons", "--samples", "200",
           "--no-progress"]
    run = tmp_path / "stopped"
    proc = subprocess.Popen([*cmd, "--steps", "100000", "--checkpoint-every", "5", "--out", str(run)],
                            stderr=subprocess.PIPE, text=True, env=env)
    meta = run / "checkpoint" / "meta.json"
    deadline = time.monotonic() + 120
    while not meta.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    step = json.loads(meta.read_text())["step"]
    assert 5 <= step < 100000 and f"gdl-ref train --resume {run}" in err
    total = str(step + 7)
    resumed = subprocess.run([*cmd[:3], "train", "--resume", str(run), "--steps", total, "--no-progress"],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run([*cmd, "--steps", total, "--out", str(tmp_path / "straight")], capture_output=True,
                              text=True, env=env)
    assert straight.returncode == 0, straight.stderr
    a, b = _weights(run), _weights(tmp_path / "straight")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
