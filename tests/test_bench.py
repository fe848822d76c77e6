"""gdl-ref bench: the harness on tiny budgets, the JSON it writes, the tables, and the benchmarks page."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import ROOT
from gdl_ref import bench, data, evaluate
from gdl_ref.likelihood import Bound
from gdl_ref.models import registry as families
from gdl_ref.train import recipe as train_recipe
from gdl_ref.bench.budgets import RECORDED_STEPS, recorded_budget
from gdl_site.benchmarks_page import render_page
from gdl_ref.bench.report import fmt, fmt_rate, fmt_ratio, ratio, tables
from gdl_site.benchmark_targets import targets_table

REQUIRED = {"family", "model", "data", "params", "device", "train_seconds", "steps", "bound", "test_nll",
            "sample_quality", "sample_quality_floor", "train_examples_per_s", "sample_examples_per_s"}


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def _run(*argv: str) -> int:
    args = _parse(*argv)
    return args.func(args)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the harness ------------------------------------------------------------------------------------

def test_toy_run_writes_json_with_all_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert _run("autoregressive", "--data", "moons", "--budget-steps", "2", "--eval-samples", "200",
                "--json", str(out), "--note", "test run", "--quiet") == 0
    doc = json.loads(out.read_text())
    assert {"date", "command", "machine", "versions", "results", "note"} <= doc.keys()
    assert doc["versions"]["torch"] == torch.__version__ and "gdl-ref" in doc["versions"]
    assert doc["command"].startswith("gdl-ref bench autoregressive --data moons --budget-steps 2")
    assert doc["machine"]["logical_cpus"] >= 1
    (row,) = doc["results"]
    assert REQUIRED | {"entropy", "kl", "kl_stderr", "hparams", "optimizer_steps", "seed"} <= row.keys(), \
        REQUIRED - row.keys()
    assert row["steps"] == 2 and row["device"] == "cpu" and row["bound"] == "differential" and row["samples"] == 200
    # the paired KL is the mean of log p - log q over the same test points: NLL - H up to the test sample's noise
    assert abs(row["kl"] - (row["test_nll"] - row["entropy"])) < 5 * row["test_nll_stderr"]
    assert row["kl_stderr"] > 0 and row["sample_quality_stderr"].keys() == row["sample_quality"].keys()
    assert doc["seeds"] == [0] and doc["wall_seconds"] > 0 and len(doc["summary"]) == 1
    assert row["params"] == sum(p.numel() for p in families.build("autoregressive", "moons").parameters())
    printed = capsys.readouterr().out
    assert "### Test likelihood" in printed and "autoregressive: MADE" in printed


def test_digits_run_reports_bits_per_dim_and_sample_quality(tmp_path: Path) -> None:
    out = tmp_path / "digits.json"
    assert _run("flow", "--data", "digits", "--budget-steps", "1", "--eval-samples", "16",
                "--json", str(out), "--quiet") == 0
    (row,) = json.loads(out.read_text())["results"]
    assert REQUIRED | {"test_bits_per_dim"} <= row.keys()
    assert row["test_bits_per_dim"] == pytest.approx(row["test_nll"] / (64 * 0.6931471805599453))
    assert "entropy" not in row
    assert row["bound"] == "dequantized" and row["test_examples"] == row["samples"] == 16
    assert row["sample_quality"].keys() == row["sample_quality_floor"].keys() >= {"fd", "kd", "mmd", "one_nn"}
    assert row["sample_quality_floor_sd"].keys() == row["sample_quality_stderr"].keys() == row["sample_quality"].keys()
    assert all(v > 0 for v in row["sample_quality_floor_sd"].values())  # floors over distinct random subsets


def test_seeds_give_one_row_each_and_a_summary_with_their_sd(tmp_path: Path) -> None:
    out = tmp_path / "seeds.json"
    assert _run("flow", "--data", "moons", "--budget-seconds", "1", "--eval-samples", "64", "--seeds", "0", "1", "2",
                "--json", str(out), "--quiet") == 0
    doc = json.loads(out.read_text())
    assert [r["seed"] for r in doc["results"]] == [0, 1, 2] and "--seeds 0 1 2" in doc["command"]
    (summary,) = doc["summary"]
    nll = [r["test_nll"] for r in doc["results"]]
    assert summary["seeds"] == [0, 1, 2] and summary["test_nll"] == pytest.approx(sum(nll) / 3)
    assert summary["sd"]["test_nll"] == pytest.approx(float(torch.tensor(nll, dtype=torch.float64).std()))
    assert len(set(nll)) == 3  # the seeds differ
    assert f"{fmt(summary['test_nll'])} ± {fmt(summary['sd']['test_nll'])}" in tables(doc["results"])


def test_the_recorded_run_uses_three_seeds_and_keeps_an_existing_json() -> None:
    script = (ROOT / "benchmarks" / "record.sh").read_text()
    (line,) = [x for x in script.splitlines() if '"$GDL_REF" bench' in x]
    argv = line.split("bench", 1)[1].split("||")[0].replace('"$out"', "x.json").replace('"$@"', "").split()
    args = _parse(*argv)
    assert args.seeds == [0, 1, 2] and args.peers and args.moved
    assert args.budget_seconds is None and args.budget_steps is None  # the recorded step budgets, not seconds
    assert bench.budgets(args) is recorded_budget
    assert 'if [ -e "$out" ]' in script  # a recorded JSON is never overwritten


def test_rows_record_what_the_optimisers_ran_with() -> None:
    history = types.SimpleNamespace(hparams={"generator": {"lr": 1e-4, "betas": (0.5, 0.9), "weight_decay": 0.0}},
                                    optimizer_steps={"generator": 10, "critic": 50})
    assert bench.what_ran(history) == {"hparams": {"generator": {"lr": 1e-4, "betas": [0.5, 0.9], "weight_decay": 0.0}},
                                       "optimizer_steps": {"generator": 10, "critic": 50}}
    assert bench.what_ran(types.SimpleNamespace()) == {"hparams": None, "optimizer_steps": None}
    row = bench.run_one("flow", "moons", bench.Budget(steps=2), eval_samples=32)
    if row["hparams"] is not None:  # recorded by fit: the recipe's learning rate is what Adam ran with
        (group,) = row["hparams"].values()
        assert group["lr"] == pytest.approx(train_recipe("flow", "moons")["lr"])
        assert sum(row["optimizer_steps"].values()) == row["steps"]


def test_runs_follow_the_family_recipe_unless_told() -> None:
    row = bench.run_one("flow", "moons", bench.Budget(steps=3), eval_samples=50)
    assert row["recipe"] == train_recipe("flow", "moons") and row["batch_size"] == row["recipe"]["batch_size"]
    assert row["test_nll_stderr"] > 0
    row = bench.run_one("flow", "moons", bench.Budget(steps=3), eval_samples=50, batch_size=8)
    assert row["recipe"]["batch_size"] == row["batch_size"] == 8
    assert row["recipe"]["lr"] == train_recipe("flow", "moons")["lr"]


def test_diffusion_is_scored_under_every_sampler() -> None:
    from gdl_ref.models.diffusion import build as build_diffusion

    calls: list[dict[str, object]] = []

    def recorded(data: str) -> nn.Module:
        model = build_diffusion(data, timesteps=20, channels=16)
        sample = model.sample
        model.sample = lambda n, **kw: calls.append(kw) or sample(n, **kw)  # type: ignore[method-assign]
        return model

    small = bench.Peer("small diffusion", "diffusion", ("moons",), recorded, dict)
    row = bench.run_one("diffusion", "moons", bench.Budget(steps=2), eval_samples=64, peer=small)
    assert calls == [{}, {"method": "ddpm", "steps": 10}, {"method": "ddim", "steps": 10}]
    labels = [v["sampler"] for v in row["samplers"]]
    assert labels == ["DDPM, 20 steps", "DDPM, 10 steps", "DDIM, 10 steps"]
    assert row["samplers"][0]["sample_quality"] == row["sample_quality"]  # the default sampler, not drawn twice
    assert [v["steps"] for v in row["samplers"]] == [20, 10, 10]
    for v in row["samplers"]:
        assert v["sample_quality"].keys() == row["sample_quality"].keys() and v["sample_examples_per_s"] > 0
    text = tables([row])
    assert "### Samplers: small diffusion (peer) on moons" in text and "| DDIM, 10 steps |" in text


@pytest.mark.parametrize("argv, message", [
    (("nosuchfamily",), "valid: all, autoregressive, flow"),
    (("vae", "--data", "mnist"), "valid: digits, moons"),
    (("vae", "--budget-steps", "0"), "must be positive"),
])
def test_bad_arguments_name_the_valid_choices(argv: tuple[str, ...], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(*argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_device_is_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("vae", "--device", "tpu")
    assert "choose from 'cpu', 'cuda'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("vae", "--device", "cuda", "--budget-steps", "1") == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_plan_expands_all_and_the_default_data() -> None:
    pairs = bench.plan("all", None)
    assert ("autoregressive", "digits") in pairs and ("flow", "checkerboard") in pairs
    assert ("gan", "8gaussians") in pairs and ("vae", "moons") not in pairs
    assert {f for f, _ in pairs} == set(bench.valid_families())
    assert bench.plan("vae", ["moons", "ring"]) == [("vae", "moons"), ("vae", "ring")]


def test_budgets_are_the_recorded_steps_unless_a_flag_replaces_them() -> None:
    budget_of = bench.budgets(_parse("flow"))
    assert budget_of("flow", "digits") == bench.Budget(steps=RECORDED_STEPS["flow"]["digits"])
    assert budget_of("gan", "8gaussians") == bench.Budget(steps=RECORDED_STEPS["gan"]["toys"])
    assert bench.budgets(_parse("flow", "--budget-steps", "7"))("ebm", "ring") == bench.Budget(steps=7)
    budget_of = bench.budgets(_parse("flow", "--budget-seconds", "120"))  # seconds: toys at most sixty
    assert budget_of("flow", "moons").seconds == 60 and budget_of("flow", "digits").seconds == 120
    budget_of = bench.budgets(_parse("flow", "--budget-seconds", "5", "--budget-steps", "3"))
    assert budget_of("flow", "digits") == budget_of("flow", "moons") == bench.Budget(5, 3)
    assert _run("flow", "--toy-budget-seconds", "5") == 2  # toys alone would leave the digits unbounded
    assert bench.Budget(steps=2000).label() == "2,000 steps" and bench.Budget(120).label() == "120 s"


def test_every_benchmarked_pair_has_a_recorded_step_budget() -> None:
    for family, data in bench.plan("all", None):
        budget = recorded_budget(family, data)
        assert budget.steps and budget.steps > 0 and budget.seconds is None
    with pytest.raises(ValueError, match="no recorded budget for family 'nope'"):
        recorded_budget("nope", "digits")


@pytest.mark.parametrize("family, data", [("flow", "moons"), ("flow", "digits"), ("gan", "8gaussians")])
def test_two_step_budget_runs_of_one_seed_score_the_same_bits(family: str, data: str) -> None:
    rows = [bench.run_one(family, data, bench.Budget(steps=6), seed=4, eval_samples=32) for _ in range(2)]
    clock = ("seconds", "per_s", "loadavg")  # measurements of the machine, not of the model
    first, second = ({k: v for k, v in row.items() if not any(c in k for c in clock)} for row in rows)
    assert first["steps"] == 6
    assert first == second  # every score, to the last bit: nothing in a step budget depends on the clock


def test_command_line_round_trips() -> None:
    args = _parse("all", "--data", "digits,moons", "--budget-seconds", "2.5", "--peers", "--json", "x.json")
    args.data = [d for group in args.data for d in group]
    again = _parse(*bench.command_line(args).split()[2:])
    again.data = [d for group in again.data for d in group]
    assert vars(again) == vars(args)


class _Gaussian2D(nn.Module):
    """A peer stand-in: a diagonal Gaussian fitted by maximum likelihood."""

    bound = Bound.DIFFERENTIAL

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(2))
        self.log_s = nn.Parameter(torch.zeros(2))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(self.mu, self.log_s.exp()).log_prob(x).sum(-1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(x).mean()

    def sample(self, n: int) -> torch.Tensor:
        return self.mu + self.log_s.exp() * torch.randn(n, 2)


def _broken(data: str) -> nn.Module:
    raise RuntimeError("adapter | broken")


def test_peers_run_beside_ours_and_failures_become_rows() -> None:
    peers = [bench.Peer("fake Gaussian", "autoregressive", ("moons",), lambda d: _Gaussian2D(), lambda: {"fake": "1"}),
             bench.Peer("broken", "autoregressive", ("moons",), _broken, dict)]
    rows = bench.bench([("autoregressive", "moons")], bench.Budget(steps=2), eval_samples=100, peers=peers,
                       log=lambda s: None)
    assert [(r["model"], r["peer"]) for r in rows] == [("MADE", False), ("fake Gaussian", True), ("broken", True)]
    assert rows[1]["test_nll"] > 0 and rows[1]["params"] == 4
    assert rows[2]["error"] == "RuntimeError: adapter | broken"
    text = tables(rows)
    assert "### Ours / peer" in text and "fake Gaussian" in text
    assert "adapter \\| broken" not in text and "`RuntimeError: adapter | broken`" in text  # a list item, not a cell
    nll = ratio(rows[0]["test_nll"], rows[1]["test_nll"])
    assert fmt_ratio(nll) in text


def test_jobs_add_the_moved_toys_of_the_density_families_after_the_rest() -> None:
    pairs = bench.plan("all", None)
    plain, moved = bench.jobs(pairs, (0, 1)), bench.jobs(pairs, (0, 1), moved=True)
    assert moved[:len(plain)] == plain and len(plain) == 2 * len(pairs)
    extra = moved[len(plain):]
    toys = sum(1 for f, d in pairs if f in ("autoregressive", "flow") and d != "digits")
    assert len(extra) == toys * len(data.MOVES) * 2
    assert {j.family for j in extra} == {"autoregressive", "flow"} and all(j.data != "digits" for j in extra)
    assert bench.Job("flow", "ring", 1, move=data.Move(10.0)).label == "flow on ring ×10, seed 1"


def test_a_moved_run_trains_and_scores_on_the_moved_toy() -> None:
    move = data.Move(10.0, 5.0)
    row = bench.run_one("autoregressive", "8gaussians", bench.Budget(steps=2), eval_samples=64, move=move)
    assert row["data"] == "8gaussians ×10 +5" and row["toy"] == "8gaussians"
    assert row["move"] == {"scale": 10.0, "shift": 5.0}
    assert row["entropy"] == pytest.approx(data.toy_entropy("8gaussians").nats + 2 * math.log(10.0))
    # the same model, unmoved, reports the entropy of the toy itself
    plain = bench.run_one("autoregressive", "8gaussians", bench.Budget(steps=2), eval_samples=64)
    assert plain["entropy"] == pytest.approx(data.toy_entropy("8gaussians").nats)
    assert row["sample_quality"].keys() == plain["sample_quality"].keys()
    with pytest.raises(ValueError, match="only a 2-D toy"):
        bench.run_one("vae", "digits", bench.Budget(steps=1), move=move)


def test_workers_run_every_job_in_other_processes_and_keep_the_order(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert _run("autoregressive", "--data", "moons,digits", "--budget-steps", "2", "--eval-samples", "64", "--seeds",
                "0", "1", "--workers", "2", "--json", str(out), "--quiet") == 0
    doc = json.loads(out.read_text())
    assert [(r["data"], r["seed"]) for r in doc["results"]] == [("moons", 0), ("moons", 1), ("digits", 0),
                                                                 ("digits", 1)]
    assert {r["torch_threads"] for r in doc["results"]} == {1}  # the digits too
    assert "--workers 2" in doc["command"]
    assert not (tmp_path / "run.json.partial.jsonl").exists()  # the JSON holds every row now
    # the same runs in this process: the same seeds give the same fits
    again = bench.bench([("autoregressive", "moons")], bench.Budget(steps=2), seeds=(1,), eval_samples=64,
                        log=lambda s: None)
    assert again[0]["test_nll"] == pytest.approx(doc["results"][1]["test_nll"], rel=1e-4)


def test_peer_and_moved_seeds_choose_the_seeds_of_those_runs_only() -> None:
    zuko = bench.Peer("a peer", "flow", ("moons",), lambda d: None, dict)
    todo = bench.jobs([("flow", "moons")], seeds=(0, 1, 2), peers=[zuko], moved=True, peer_seeds=(0,),
                      moved_seeds=(1,))
    ours = [j for j in todo if j.peer is None and j.move is None]
    assert [j.seed for j in ours] == [0, 1, 2]
    assert {j.seed for j in todo if j.peer} == {0} and {j.seed for j in todo if j.move} == {1}
    assert len([j for j in todo if j.move]) == len(data.MOVES)
    assert [j.sweep for j in ours] == [True, False, False]  # the sampler sweep: the first seed only
    args = _parse("flow", "--seeds", "0", "1", "2", "--peers", "--peer-seeds", "0", "--moved", "--moved-seeds", "0")
    assert "--seeds 0 1 2 --peer-seeds 0 --moved-seeds 0" in bench.command_line(args)
    assert _run("flow", "--data", "moons", "--peer-seeds", "0") == 2  # without --peers: a usage error


def test_the_sampler_sweep_runs_on_the_first_seed_and_the_summary_keeps_it(tmp_path: Path) -> None:
    from gdl_ref.bench.report import aggregate
    from gdl_ref.models.diffusion import build as build_diffusion

    small = bench.Peer("small diffusion", "diffusion", ("moons",), lambda d: build_diffusion(d, timesteps=20,
                                                                                              channels=16), dict)
    rows = bench.bench([("diffusion", "moons")], bench.Budget(steps=2), seeds=(3, 4), eval_samples=32,
                       peers=[small], log=lambda s: None)
    peer_rows = [r for r in rows if r["peer"]]
    assert [("samplers" in r) for r in peer_rows] == [True, False]
    (summary,) = [r for r in aggregate(peer_rows)]
    assert summary["seeds"] == [3, 4] and all(v["seeds"] == [3] for v in summary["samplers"])


def test_an_interrupted_run_resumes_and_reruns_only_the_missing_jobs(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gdl_ref.bench import harness

    out = tmp_path / "run.json"
    argv = ("autoregressive", "--data", "moons", "--budget-steps", "2", "--eval-samples", "64", "--seeds", "0", "1",
            "2", "--json", str(out), "--quiet")
    real, ran = harness.run_one, []

    def dies_on_the_third(family: str, data_name: str, budget: bench.Budget, **kw: object) -> dict[str, object]:
        ran.append(kw["seed"])
        if len(ran) == 3:
            raise KeyboardInterrupt  # the run is killed while its third job trains
        return real(family, data_name, budget, **kw)

    monkeypatch.setattr(harness, "run_one", dies_on_the_third)
    assert _run(*argv) == 130  # interrupted (gdl_ref.cli_errors)
    partial = tmp_path / "run.json.partial.jsonl"
    assert not out.exists() and len(partial.read_text().splitlines()) == 3  # the sitting's line and two rows
    assert _run(*argv) == 1  # without --resume the unfinished run is refused, and its rows are kept
    assert len(partial.read_text().splitlines()) == 3
    ran.clear()
    monkeypatch.setattr(harness, "run_one", lambda *a, **kw: ran.append(kw["seed"]) or real(*a, **kw))
    assert _run(*argv, "--resume") == 0
    assert ran == [2]  # only the job without a row ran again
    doc = json.loads(out.read_text())
    assert [r["seed"] for r in doc["results"]] == [0, 1, 2] and doc["sittings"] == 2 and not partial.exists()
    whole = tmp_path / "whole.json"
    assert _run(*argv[:-3], "--json", str(whole), "--quiet") == 0
    assert [r["test_nll"] for r in json.loads(whole.read_text())["results"]] == [r["test_nll"] for r in doc["results"]]


def test_resume_refuses_the_rows_of_another_command(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    partial = tmp_path / "run.json.partial.jsonl"
    partial.write_text(json.dumps({"sitting": 1, "command": "gdl-ref bench gan --seeds 0 --device cpu"}) + "\n")
    assert _run("autoregressive", "--data", "moons", "--budget-steps", "2", "--json", str(out), "--resume",
                "--quiet") == 1
    assert partial.read_text().count("\n") == 1  # untouched
    assert _run("autoregressive", "--data", "moons", "--resume") == 2  # --resume without --json


def test_load_peers_explains_a_missing_package(tmp_path: Path) -> None:
    (tmp_path / "needs_it.py").write_text("import a_package_that_is_not_installed\nPEERS = []\n")
    with pytest.raises(ImportError, match="benchmarks/requirements.txt"):
        bench.load_peers(tmp_path)
    with pytest.raises(FileNotFoundError, match="--peers"):
        bench.load_peers(tmp_path / "missing")


# ---- the peer adapters (skipped without the peers' packages) ----------------------------------------

@pytest.mark.slow
def test_zuko_peer_follows_the_contract() -> None:
    pytest.importorskip("zuko")
    from gdl_ref.data import dequantize, load

    peers = {p.name: p for p in bench.load_peers(ROOT / "benchmarks" / "peers")}
    flow = peers["zuko NSF"].build("digits")
    x = load("digits", "test")[:8]
    torch.manual_seed(0)
    lp = flow.log_prob(x)
    assert lp.shape == (8,) and flow.bound is Bound.DEQUANTIZED
    # the same u: log P(x) >= log p_V(v) + log|dv/dy| - 64 log 17, v = logit(a + (1 - 2a) y), y = (x + u) / 17
    torch.manual_seed(0)
    y = dequantize(x).flatten(1)
    s = 0.05 + 0.9 * y
    log_py = flow.flow().log_prob(torch.logit(s)) + (math.log(0.9) - torch.log(s * (1 - s))).sum(-1)
    torch.testing.assert_close(lp, log_py - 64 * math.log(17), rtol=1e-5, atol=1e-3)
    s = flow.sample(3)
    assert s.dtype == torch.int64 and s.shape == (3, 1, 8, 8) and 0 <= int(s.min()) <= int(s.max()) <= 16
    toy = peers["zuko MAF"].build("moons")
    assert toy.bound is Bound.DIFFERENTIAL and toy.sample(5).shape == (5, 2)


@pytest.mark.slow
def test_diffusers_peer_follows_the_contract() -> None:
    pytest.importorskip("diffusers")
    from gdl_ref.data import load

    peer = {p.name: p for p in bench.load_peers(ROOT / "benchmarks" / "peers")}["diffusers DDPM"]
    model = peer.build("digits")
    assert model.bound is None and evaluate.bound_of(model) is None and "no NLL" in peer.note
    loss = model.loss(load("digits", "train")[:4])
    assert loss.ndim == 0 and torch.isfinite(loss)
    model.sample_steps = 3
    s = model.sample(2)
    assert s.dtype == torch.int64 and s.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="digits only"):
        peer.build("moons")


def _peer(name: str) -> bench.Peer:
    return {p.name: p for p in bench.load_peers(ROOT / "benchmarks" / "peers")}[name]


def _assert_trains(model: nn.Module, x: torch.Tensor) -> None:
    """loss(x) is a finite scalar whose gradient reaches every parameter."""
    loss = model.loss(x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters() if p.requires_grad)


def _assert_levels(s: torch.Tensor, n: int) -> None:
    assert s.dtype == torch.int64 and s.shape == (n, 1, 8, 8) and 0 <= int(s.min()) <= int(s.max()) <= 16


@pytest.mark.slow
def test_lucidrains_peer_follows_the_contract() -> None:
    pytest.importorskip("denoising_diffusion_pytorch")
    from gdl_ref.data import levels_to_signed, load
    from gdl_ref.models.diffusion import DiffusionConfig, beta_schedule

    peer = _peer("lucidrains DDPM")
    model = peer.build("digits")
    assert model.bound is None and evaluate.bound_of(model) is None and "no NLL" in peer.note
    assert model.diffusion.num_timesteps == DiffusionConfig().timesteps and model.diffusion.objective == "pred_noise"
    torch.testing.assert_close(model.diffusion.betas.double(), beta_schedule("cosine", 1000), rtol=0, atol=1e-6)
    small = type(model)("digits", DiffusionConfig(timesteps=4))
    x = load("digits", "train")[:4]
    seen: list[torch.Tensor] = []
    losses = small.diffusion.p_losses
    small.diffusion.p_losses = lambda x0, t, **kw: seen.append(x0) or losses(x0, t, **kw)  # type: ignore[method-assign]
    _assert_trains(small, x)
    assert torch.equal(seen[0], levels_to_signed(x))  # the library's x_0 is exactly ours
    _assert_levels(small.sample(2), 2)
    with pytest.raises(ValueError, match="digits only"):
        peer.build("moons")


def _linear_field(dims: int, seed: int = 0) -> tuple[nn.Linear, torch.distributions.MultivariateNormal]:
    """v(t, x) = A x + c as a layer on [x, t], and the law of x(1) = e^A x(0) + A^-1 (e^A - I) c, x(0) ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    a = 0.5 * torch.randn(dims, dims, generator=g) / math.sqrt(dims)
    c = 0.5 * torch.randn(dims, generator=g)
    layer = nn.Linear(dims + 1, dims)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([a, torch.zeros(dims, 1)], dim=1))
        layer.bias.copy_(c)
    e = torch.linalg.matrix_exp(a)
    mean = torch.linalg.solve(a, (e - torch.eye(dims)) @ c)
    return layer, torch.distributions.MultivariateNormal(mean, e @ e.T)


@pytest.mark.slow
def test_torchcfm_peer_follows_the_contract() -> None:
    pytest.importorskip("torchcfm")
    from gdl_ref.data import dequantize, load

    peer = _peer("torchcfm CFM")
    assert set(peer.data) == {"digits", *data.TOY_NAMES} and peer.pairs_with == "flow"
    flow = peer.build("digits")
    assert flow.bound is Bound.DEQUANTIZED and evaluate.bound_of(flow) is Bound.DEQUANTIZED
    x = load("digits", "test")[:4]
    _assert_trains(flow, x)
    # the exact-trace CNF density against a closed form: a linear field moves N(0, I) to a known Gaussian
    for dims in (2, 64):
        field = peer.build("moons" if dims == 2 else "digits")
        field.net, law = _linear_field(dims)
        y = law.sample((3,))
        torch.testing.assert_close(field.log_prob_continuous(y), law.log_prob(y), rtol=0, atol=1e-3)
    # digits: log P(x) >= log p_V(v) + log|dv/dy| - 64 log 17 with v = logit(a + (1 - 2a) y), y = (x + u) / 17
    torch.manual_seed(0)
    lp = field.log_prob(x)
    torch.manual_seed(0)
    s = 0.05 + 0.9 * dequantize(x).flatten(1)
    log_py = law.log_prob(torch.logit(s)) + (math.log(0.9) - torch.log(s * (1 - s))).sum(-1)
    torch.testing.assert_close(lp, log_py - 64 * math.log(17), rtol=2e-5, atol=1e-3)  # the ODE's tolerance is 1e-5
    _assert_levels(flow.sample(3), 3)
    toy = peer.build("moons")
    assert toy.bound is Bound.DIFFERENTIAL and toy.sample(5).shape == (5, 2)
    assert toy.log_prob(toy.sample(5)).shape == (5,)


@pytest.mark.slow
@pytest.mark.parametrize("name, family, data_name", [("lucidrains DDPM", "diffusion", "digits"),
                                                     ("torchcfm CFM", "flow", "digits"),
                                                     ("torchcfm CFM", "flow", "moons")])
def test_new_peers_give_a_row_like_the_others(name: str, family: str, data_name: str) -> None:
    pytest.importorskip({"lucidrains DDPM": "denoising_diffusion_pytorch", "torchcfm CFM": "torchcfm"}[name])
    peer = _peer(name)
    build = peer.build
    if name == "lucidrains DDPM":  # T = 4: the sampler runs T steps
        from gdl_ref.models.diffusion import DiffusionConfig

        build = lambda d: type(peer.build(d))(d, DiffusionConfig(timesteps=4))  # noqa: E731
    small = bench.Peer(peer.name, peer.pairs_with, peer.data, build, peer.versions, peer.note)
    row = bench.run_one(family, data_name, bench.Budget(steps=2), eval_samples=8, peer=small)
    assert REQUIRED - ({"test_nll"} if name == "lucidrains DDPM" else set()) <= row.keys()
    assert row["peer"] and row["model"] == name and row["family"] == family and row["steps"] == 2
    if name == "lucidrains DDPM":
        assert row["bound"] is None and "test_nll" not in row and row["note"] == peer.note
    else:
        assert row["bound"] == ("dequantized" if data_name == "digits" else "differential")
        assert math.isfinite(row["test_nll"]) and ("test_bits_per_dim" in row) == (data_name == "digits")


# ---- tables, targets, the page ----------------------------------------------------------------------

def test_cell_formatting() -> None:
    assert [fmt(None), fmt(3), fmt(12345), fmt(1.23456), fmt(1234.5678, 0), fmt(2.5e-5), fmt(True)] == [
        "–", "3", "12,345", "1.235", "1,235", "2.50e-05", "yes"]
    assert [fmt_rate(12345.6), fmt_rate(12.345), fmt_rate(0.3333), fmt_rate(None)] == ["12,346", "12.3", "0.333", "–"]
    assert ratio(1.0, 2.0) == 0.5 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None
    assert fmt_ratio(0.5) == "0.50×" and fmt_ratio(None) == "–"


def _row(family: str, data: str, **extra: object) -> dict[str, object]:
    base = {"family": family, "model": "M", "peer": False, "data": data, "params": 10, "device": "cpu",
            "steps": 5, "train_seconds": 1.0, "train_examples_per_s": 320.0, "sample_seconds": 0.5,
            "samples": 100, "sample_examples_per_s": 200.0, "bound": "exact", "budget_seconds": 2.0,
            "budget_steps": None, "sample_quality": {}, "sample_quality_floor": {}}
    return {**base, **extra}


def _lines(text: str) -> dict[tuple[str, ...], str]:
    return {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line for line in text.splitlines()}


def test_targets_are_judged_from_the_rows() -> None:
    rows = [_row("autoregressive", "digits", test_nll=70.0, test_bits_per_dim=1.6),
            _row("flow", "moons", test_nll=1.0, entropy=0.9, kl=0.1, kl_stderr=0.01),
            _row("flow", "moons ×10", test_nll=5.0, entropy=5.5, kl=0.01, kl_stderr=0.01),
            _row("gan", "8gaussians", sample_quality={"mmd": 0.03, "one_nn": 0.6, "modes_covered": 8.0},
                 sample_quality_floor={"mmd": 0.02, "one_nn": 0.5}),
            {"family": "ebm", "model": "", "peer": False, "data": "digits", "error": "boom"}]
    lines = _lines(targets_table(rows))
    assert "| 1.600 | 1 | reached" in lines[("autoregressive", "digits", "bits/dim ≤ 1.70")]
    assert "| 0.100 ± 0.010 | 1 | not reached" in lines[("flow", "moons", "KL ≤ 0.05 nats")]
    assert "| 0.010 ± 0.010 | 1 | reached" in lines[("flow", "moons ×10", "KL ≤ 0.05 nats")]
    assert "| 1.500 (mmd) | 1 | reached" in lines[("gan", "8gaussians", "every distance ≤ 2 × floor")]
    assert "| reached" in lines[("gan", "8gaussians", "8 of 8 modes covered")]
    assert "failed to run" in lines[("ebm", "digits", "every distance ≤ 2 × floor")]
    assert ("flow", "ring", "KL ≤ 0.05 nats") not in lines  # a pair not run has no line


def test_ahead_of_a_peer_is_the_ratio_of_the_means_over_seeds() -> None:
    ours = [_row("flow", "digits", seed=k, test_nll=v, test_bits_per_dim=v / 44.36) for k, v in ((0, 90.0), (1, 94.0))]
    nsf = [_row("flow", "digits", seed=k, model="zuko NSF", peer=True, test_nll=v) for k, v in ((0, 95.0), (1, 97.0))]
    lines = _lines(targets_table(ours + nsf))
    line = lines[("flow", "digits", "NLL below zuko NSF's (ours / peer < 1)")]
    assert f"| {92.0 / 96.0:.3f} | 2 | reached" in line
    assert ("flow", "digits", "NLL below zuko NSF's (ours / peer < 1)") in _lines(targets_table(ours))  # no peer: –
    assert "| – | 2 | – |" in _lines(targets_table(ours))[("flow", "digits", "NLL below zuko NSF's (ours / peer < 1)")]


def test_a_missed_target_needs_its_reason() -> None:
    rows = [_row("flow", "moons", test_nll=1.0, entropy=0.9, kl=0.1, kl_stderr=0.01),
            _row("autoregressive", "digits", test_nll=70.0, test_bits_per_dim=1.6)]
    with pytest.raises(ValueError, match=r"flow \| moons \| KL ≤ 0.05 nats"):
        targets_table(rows, reasons={})
    text = targets_table(rows, reasons={"flow | moons | KL ≤ 0.05 nats": "too few steps"})
    assert text.splitlines()[0].endswith("| why not |")
    assert _lines(text)[("flow", "moons", "KL ≤ 0.05 nats")].endswith("| too few steps |")
    assert _lines(text)[("autoregressive", "digits", "bits/dim ≤ 1.70")].endswith("|  |")  # reached: no reason
    for stale in ("autoregressive | digits | bits/dim ≤ 1.70", "flow | ring | KL ≤ 0.05 nats"):  # reached; no line
        with pytest.raises(ValueError, match="remove them"):
            targets_table(rows, reasons={"flow | moons | KL ≤ 0.05 nats": "too few steps", stale: "stale"})


def test_the_render_script_reads_the_reasons_beside_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script("render_page")
    doc = {"date": "2026-01-02T03:04:05+00:00", "command": "gdl-ref bench flow", "versions": {"torch": "9.9"},
           "machine": {"cpu": "Some CPU", "logical_cpus": 2, "torch_threads": 2, "system": "Linux"},
           "seeds": [0], "results": [_row("flow", "moons", seed=0, test_nll=1.0, entropy=0.9, kl=0.1, kl_stderr=0.02)]}
    run = tmp_path / "2026-01-02-cpu.json"
    run.write_text(json.dumps(doc))
    (tmp_path / "metrics-figures.json").write_text("{}")  # not a run: never picked as the newest
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    assert script.latest() == run
    assert "| why not |" not in script.render(run)  # no reasons file: the table has no reasons column
    reasons = script.reasons_path(run)
    reasons.write_text('"flow | moons | KL ≤ 0.05 nats" = "a reason"\n')
    assert "| not reached | ran 1 s of 2 s | a reason |" in script.render(run)
    reasons.write_text('"flow | ring | KL ≤ 0.05 nats" = "a reason for a target not on the page"\n')
    with pytest.raises(ValueError, match="flow \\| moons"):
        script.render(run)
    page = tmp_path / "page.md"
    assert script.main([str(run), "--out", str(page)]) == 2 and not page.exists()  # nothing written on error
    reasons.write_text('"flow | moons | KL ≤ 0.05 nats" = \n')
    with pytest.raises(ValueError, match="reasons.toml"):
        script.render(run)


def test_tables_show_ours_then_ours_on_moved_toys_then_the_peers() -> None:
    rows = [_row("flow", "moons", model="zuko NSF", peer=True, test_nll=1.2),
            _row("flow", "moons ×10", toy="moons", move={"scale": 10.0, "shift": 0.0}, test_nll=5.6),
            _row("flow", "moons", test_nll=1.1)]
    text = tables(rows)
    first = [text.index(needle) for needle in ("| flow: M | moons |", "| flow: M | moons ×10 |", "| zuko NSF (peer) | moons |")]
    assert first == sorted(first)


def test_distances_show_their_floor_and_ratio() -> None:
    rows = [_row("gan", "digits", bound=None, sample_quality={"fd": 3.0, "one_nn": 0.8},
                 sample_quality_floor={"fd": 1.5, "one_nn": 0.5})]
    text = tables(rows)
    assert "3.000 (1.500; 2.00×)" in text and "0.800 (0.500; 1.60×)" in text
    rows[0].update(sample_quality_stderr={"fd": 0.25}, sample_quality_floor_sd={"fd": 0.5})
    assert "3.000 ± 0.250 (1.500 ± 0.500; 2.00×)" in tables(rows)
    assert "### Test likelihood" not in text  # no likelihood for a GAN


@pytest.mark.content  # the committed page against its recorded run
def test_page_is_generated_from_its_json() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    match = re.search(r"generated by benchmarks/render_page\.py from (\S+);", page)
    assert match, "docs/benchmarks.md lacks the marker naming its JSON"
    assert (ROOT / match.group(1)).is_file(), f"{match.group(1)} is not in the repository"
    assert _script("render_page").render(ROOT / match.group(1)) == page, (
        f"docs/benchmarks.md is out of date: run python benchmarks/render_page.py {match.group(1)}")


def test_page_shows_date_machine_command_and_versions(tmp_path: Path) -> None:
    doc = {"date": "2026-01-02T03:04:05+00:00", "command": "gdl-ref bench all --budget-seconds 2",
           "note": "a busy machine", "versions": {"torch": "9.9", "zuko": "1.0"},
           "machine": {"cpu": "Some CPU", "logical_cpus": 2, "torch_threads": 2, "system": "Linux",
                       "loadavg_start": [7.5, 6.0, 5.0], "loadavg_end": [8.0, 7.0, 5.5]},
           "seeds": [0, 1], "wall_seconds": 4000.0,
           "results": [_row("flow", "moons", seed=0, test_nll=1.0, entropy=0.9, kl=0.1, kl_stderr=0.02),
                       _row("flow", "moons", seed=1, test_nll=1.2, entropy=0.9, kl=-0.1, kl_stderr=0.02,
                            kl_negative=True)]}
    page = render_page(doc, "benchmarks/results/x.json")
    for needle in ("2026-01-02T03:04:05+00:00", "`gdl-ref bench all --budget-seconds 2`", "Some CPU, 2 logical CPUs",
                   "7.5, 6, 5 → 8, 7, 5.5", "torch 9.9, zuko 1.0", "| note | a busy machine |",
                   "2 s per run (2-D toys)", '<!--pytest.mark.skip(reason="',
                   "| seeds | 0, 1 |", "| wall time of the whole run | 1 h 7 min |", "mean ± sd over 2 seeds",
                   "| 1.100 ± 0.141 |", "0.000 ± 0.141 †", "| KL ≤ 0.05 nats | 0.000 ± 0.141 | 2 | reached | ran 1 s of 2 s |"):
        assert needle in page, needle
    # every bash fence on the page is marked as not run
    fences = re.findall(r'(<!--pytest\.mark\.skip\(reason="[^"]+"\)-->\n\n)?```bash', page)
    assert fences and all(fences)
    assert '!!! warning "About this run"' not in page  # a note is a line of the run table, not a box


def _step_row(family: str, data: str, **extra: object) -> dict[str, object]:
    steps = recorded_budget(family, data).steps
    return _row(family, data, **{"budget_seconds": None, "budget_steps": steps, "steps": steps, "stop_reason": "steps",
                                 "torch_threads": 2, "loadavg_start": 0.5, **extra})


def test_a_step_budget_page_opens_with_its_figure_summary_and_speed() -> None:
    rows = [_step_row("autoregressive", "digits", model="PixelCNN", seed=k, test_nll=78.0 + k, test_bits_per_dim=1.75 + k / 100)
            for k in (0, 1, 2)]
    rows += [_step_row("flow", "digits", model="ImageFlow", seed=k, test_nll=90.0, test_bits_per_dim=2.0,
                       stop_reason="early_stopping", steps=480) for k in (0, 1, 2)]
    rows += [_step_row("flow", "digits", model="zuko NSF", peer=True, seed=k, test_nll=100.0, test_bits_per_dim=2.2,
                       train_examples_per_s=160.0, sample_examples_per_s=50.0) for k in (0, 1, 2)]
    rows += [_step_row("flow", "moons", model="SplineFlow", seed=0, test_nll=1.0, entropy=0.9, kl=0.01, kl_stderr=0.01),
             _step_row("flow", "moons ×10", model="SplineFlow", seed=0, toy="moons", move={"scale": 10.0, "shift": 0.0},
                       test_nll=5.6, entropy=5.5, kl=0.01, kl_stderr=0.01)]
    doc = {"schema": 2, "date": "2026-01-02T03:04:05+00:00", "command": "gdl-ref bench all --seeds 0 1 2 --peers --moved",
           "note": "", "versions": {"torch": "9.9"}, "seeds": [0, 1, 2], "wall_seconds": 2400.0,
           "machine": {"cpu": "Some CPU", "logical_cpus": 2, "torch_threads": 2, "system": "Linux",
                       "loadavg_start": [0.5, 0.5, 0.5], "loadavg_end": [1.0, 1.0, 1.0]}, "results": rows}
    page = render_page(doc, "benchmarks/results/x.json")
    figure, summary, run = page.index("<svg"), page.index("## Summary"), page.index("## The run")
    assert figure < summary < run and "!!! warning" not in page
    svg = page[figure:page.index("</svg>")]
    assert svg.count("<circle") == 3 and svg.count('stroke-dasharray') == 2  # 2 of ours with targets, 1 peer
    assert "PixelCNN: 1.760 ± 0.010" in svg and "zuko NSF (peer): 2.200 ± 0.000" in svg
    for needle in ("| Autoregressive models | PixelCNN | 1.760 ± 0.010 bits/dim | bits/dim ≤ 1.70 | not reached | – | "
                   f"ran {RECORDED_STEPS['autoregressive']['digits']:,} steps |",
                   "| Normalizing flows | ImageFlow | 2.000 ± 0.000 bits/dim | bits/dim ≤ 1.95 | not reached | zuko NSF: NLL "
                   f"ours / peer 0.90× | stopped early at step 480 of {RECORDED_STEPS['flow']['digits']:,} |",
                   "| flow | digits | flow: ImageFlow | zuko NSF | 320 | 160 | 2.00× | 200 | 50 | 4.00× | 2 / 2 | 0.50 / 0.50 |",
                   "gdl-ref bench flow --data digits --seeds 0 1 2 --peers\n",
                   "gdl-ref bench flow --data moons --seeds 0 --moved\n",  # the seeds of its own rows
                   f"autoregressive: {RECORDED_STEPS['autoregressive']['digits']:,} steps (digits)"):
        assert needle in page, needle


@pytest.mark.gpu
def test_cuda_smoke(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    status = _run("all", "--device", "cuda", "--budget-steps", "2", "--eval-samples", "32", "--json", str(out),
                  "--quiet")
    doc = json.loads(out.read_text())
    assert [r.get("error") for r in doc["results"] if "error" in r] == [] and status == 0
    assert {r["device"] for r in doc["results"]} == {"cuda"} and doc["machine"]["gpu"]


def test_a_table_whose_rows_ran_different_seeds_shows_them() -> None:
    rows = [_row("flow", "moons", seed=k, test_nll=1.0 + k / 10, kl=0.01, kl_stderr=0.01, entropy=1.0) for k in (0, 1)]
    rows.append(_row("flow", "moons ×10", seed=0, toy="moons", move={"scale": 10.0, "shift": 0.0}, test_nll=5.6,
                     test_nll_stderr=0.05, kl=0.02, kl_stderr=0.01, entropy=5.6))
    text = tables(rows)
    assert "| seeds |" in text
    assert "| 0, 1 |" in text and "| 5.600 ± 0.050 |" in text  # one seed: its own standard error
    assert "| seeds |" not in tables(rows[:2])


def test_names_and_samplers_come_from_the_registry_and_the_bench_table() -> None:
    """A row's model name is the registry's label (the config states its variant); the sampler sweep is the
    bench's table for the family, not a method of the model."""
    from gdl_ref.bench.samplers import SAMPLER_SWEEPS, diffusion_samplers
    from gdl_ref.models.diffusion import Diffusion

    assert families.label(families.build("flow", "moons", coupling="affine")) == "PointFlow (affine couplings)"
    assert families.label(families.build("vae", "digits")) == "ImageVAE"
    table = diffusion_samplers(1000)
    assert len(table) == 9 and next(iter(table)) == "DDPM, 1000 steps"
    assert table["DDIM, 10 steps"] == {"method": "ddim", "steps": 10}
    assert list(diffusion_samplers(20)) == ["DDPM, 20 steps", "DDPM, 10 steps", "DDIM, 10 steps"]
    assert set(SAMPLER_SWEEPS) == {"diffusion"} and not hasattr(Diffusion, "sampler_variants")


def test_row_commands_name_the_peer_and_moved_seeds_where_they_differ_from_ours() -> None:
    from gdl_site.benchmarks_page import row_commands

    rows = [_step_row("flow", "moons", model="SplineFlow", seed=k) for k in (0, 1, 2)]
    rows += [_step_row("flow", "moons", model="zuko NSF", peer=True, seed=0),
             _step_row("flow", "moons ×10", model="SplineFlow", seed=0, toy="moons", move={"scale": 10.0, "shift": 0.0})]
    assert row_commands({"results": rows}, "flow") == [
        "gdl-ref bench flow --data moons --seeds 0 1 2 --moved --moved-seeds 0 --peers --peer-seeds 0"]
    same = [r for r in rows if not r.get("move")] + [{**r, "seed": k} for r in rows if r.get("move") for k in (0, 1, 2)]
    same += [{**rows[3], "seed": k} for k in (1, 2)]
    assert row_commands({"results": same}, "flow") == ["gdl-ref bench flow --data moons --seeds 0 1 2 --moved --peers"]


def test_the_json_names_the_commit_the_run_started_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gdl_ref.bench import harness

    commits = iter(["abc123", "def456+changes"])  # the checkout changes while the run trains
    monkeypatch.setattr(harness, "_git_commit", lambda: next(commits))
    out = tmp_path / "run.json"
    assert _run("autoregressive", "--data", "moons", "--budget-steps", "2", "--eval-samples", "32", "--json", str(out),
                "--quiet") == 0
    assert json.loads(out.read_text())["versions"]["gdl-ref commit"] == "abc123"


def test_resume_drops_a_last_line_cut_short_by_the_kill(tmp_path: Path) -> None:
    from gdl_ref.bench.progress import RowLog

    path = tmp_path / "run.json.partial.jsonl"
    job = bench.Job("flow", "moons", seed=1, move=data.MOVES[0])
    first = RowLog(path, "the command", resume=False)
    first.add(job, {"model": "x", "test_nll": 1.5})
    with path.open("a") as f:
        f.write('{"sitting": 1, "elapsed": 3.0, "job": {"fam')  # the kill landed mid-write
    again = RowLog(path, "the command", resume=True)
    assert again.done == {job: {"model": "x", "test_nll": 1.5}} and again.sittings == 2
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)  # the cut line went; the new sitting follows
    RowLog(path, "the command", resume=True)  # and a third sitting reads the file too
