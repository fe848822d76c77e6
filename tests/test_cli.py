"""Tests for the gdl-ref command: help, clear usage errors, and train -> sample -> evaluate."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import register_family
from gdl_ref import cli, data

torch.set_num_threads(1)


@dataclasses.dataclass
class PixelsConfig:
    data: str = "digits"
    temperature: float = 1.0


class IndependentPixels(nn.Module):
    """An independent categorical per pixel: log p(x) = sum_d log softmax(theta_d)[x_d] (exact NLL)."""

    nll_bound = "exact"

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
    (["train", "flow", "--steps", "0"], "must be positive"),
    (["train", "flow", "--device", "tpu"], "unknown device 'tpu'; valid: cpu, cuda, cuda:N"),
    (["train", "flow", "--set", "nonsense=3", "--steps", "1"], "nonsense"),
    (["evaluate", "does/not/exist"], "no such checkpoint: does/not/exist"),
    (["sample", "x"], "the following arguments are required: --out"),
    (["launch"], "invalid choice: 'launch'"),
])
def test_usage_errors_are_clear_with_exit_2(capsys, argv, expected):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_cards_and_bench_are_optional(monkeypatch):
    names = set(next(a for a in cli.build_parser()._actions if a.dest == "command").choices)
    assert {"train", "sample", "evaluate"} <= names
    monkeypatch.setitem(sys.modules, "gdl_ref.bench", None)  # as if the module were not there
    monkeypatch.setitem(sys.modules, "gdl_ref.cards.cli", None)
    names = set(next(a for a in cli.build_parser()._actions if a.dest == "command").choices)
    assert names == {"train", "sample", "evaluate"}



def test_digits_train_then_evaluate_from_an_empty_cache(tmp_path):
    """The README's digits path on a machine that never ran the project: the session cache is empty when
    this test runs (conftest runs it first), so `evaluate` trains the feature classifier from scratch."""
    cache = Path(os.environ["GDL_REF_CACHE"])
    assert not (cache / "digit-classifier.safetensors").exists(), "this test must run first, on an empty cache"
    run = [sys.executable, "-m", "gdl_ref.cli"]
    out = tmp_path / "vae"
    train = subprocess.run([*run, "train", "vae", "--data", "digits", "--steps", "30", "--out", str(out),
                            "--no-progress"], capture_output=True, text=True, check=False)
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
