"""gdl_ref.evaluate: each estimator against an independent computation, and the typed results."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gdl_ref import data, evaluate, metrics
from gdl_ref.likelihood import Bound

torch.set_num_threads(1)


class _Gaussian2D(nn.Module):
    """q = N(mu, diag(sigma^2)) in 2-D, a continuous density that states its bound."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, mu: tuple[float, float], sigma: tuple[float, float]) -> None:
        super().__init__()
        self.mu, self.sigma = torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Normal(self.mu, self.sigma).log_prob(x.double()).sum(-1)

    def sample(self, n: int) -> torch.Tensor:
        return (self.mu + self.sigma * torch.randn(n, 2, dtype=torch.float64)).float()


class _Truth(nn.Module):
    """The toy's own density as a model."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return data.toy_log_prob(self.name, x)

    def sample(self, n: int) -> torch.Tensor:
        return data.toy(self.name, n, seed=int(torch.randint(0, 2**31 - 1, ())))


def _kl_gaussians(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> float:
    """KL(N(m1, s1^2) || N(m2, s2^2)) summed over independent coordinates, in closed form."""
    return float((torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum())


def test_paired_kl_agrees_with_the_closed_form_between_gaussians() -> None:
    p, q = _Gaussian2D((0.0, 1.0), (1.0, 0.5)), _Gaussian2D((0.3, 0.8), (1.2, 0.6))
    x = p.mu + p.sigma * torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kl, se = evaluate.paired_kl(p.log_prob(x), q.log_prob(x))
    exact = _kl_gaussians(p.mu, p.sigma, q.mu, q.sigma)
    assert 0 < se < 0.01 and abs(kl - exact) < 4 * se


def test_paired_kl_of_the_true_density_is_zero() -> None:
    # pairing: log p - log q vanishes point by point (up to the model's float32), where NLL - H would carry
    # the test sample's noise
    result = evaluate.evaluate_density(_Truth("ring"), data.dataset("ring"))
    assert abs(result.kl) < 1e-6 and result.kl_stderr < 1e-6 and not result.kl_negative
    assert result.bound is Bound.DIFFERENTIAL and result.examples == data.TOY_SPLITS["test"][0]
    assert abs(result.nll - result.entropy) < 4 * result.nll_stderr  # the unpaired difference is only noise


def test_evaluate_density_on_a_toy_matches_its_definition() -> None:
    model = _Gaussian2D((0.0, 0.0), (1.0, 0.7))
    result = evaluate.evaluate_density(model, data.dataset("moons"), examples=500)
    x = data.load("moons", "test")[:500].double()
    diff = data.toy_log_prob("moons", x).double() - model.log_prob(x)
    assert result.kl == pytest.approx(float(diff.mean())) and result.examples == 500
    assert result.kl_stderr == pytest.approx(float(diff.std() / math.sqrt(500)))
    assert result.nll == pytest.approx(float(-model.log_prob(x).mean()))
    assert result.bound is Bound.DIFFERENTIAL and result.bits_per_dim is None
    d = result.to_dict()
    assert d["bound"] == "differential" and d["kl"] == result.kl and d["kl_negative"] is False


def test_a_negative_kl_beyond_its_standard_error_is_flagged() -> None:
    low = evaluate.DensityResult("moons", Bound.DIFFERENTIAL, "differential", 10, 1.0, 0.1, kl=-0.05, kl_stderr=0.01)
    near = evaluate.DensityResult("moons", Bound.DIFFERENTIAL, "differential", 10, 1.0, 0.1, kl=-0.005, kl_stderr=0.01)
    assert low.kl_negative and low.to_dict()["kl_negative"] and not near.kl_negative


def test_bits_per_dim_and_the_bound_on_digits() -> None:
    class Uniform(nn.Module):
        bound = Bound.DEQUANTIZED

        def log_prob(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((len(x),), -64 * math.log(17))

    result = evaluate.evaluate_density(Uniform(), data.dataset("digits"))
    assert result.bound is Bound.DEQUANTIZED and result.kl is None
    assert result.bits_per_dim == pytest.approx(math.log(17) / math.log(2)) and result.bits_per_dim_stderr == 0
    assert evaluate.bound_of(nn.Linear(1, 1)) is None
    with pytest.raises(TypeError, match="no likelihood"):
        evaluate.evaluate_density(nn.Linear(1, 1), data.dataset("digits"))


def test_evaluation_leaves_the_model_mode_and_the_random_state_alone() -> None:
    model = _Gaussian2D((0.0, 0.0), (1.0, 1.0)).train()
    state = torch.random.get_rng_state()
    evaluate.evaluate_density(model, data.dataset("ring"), examples=10)
    assert model.training and torch.equal(state, torch.random.get_rng_state())


def test_bootstrap_stderr_of_a_mean_agrees_with_the_analytic_one() -> None:
    x = torch.randn(400, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 1
    se = evaluate.bootstrap_stderr(lambda ia, ib: {"mean": float(x[ia].mean())}, len(x), 1, replicates=2000)
    analytic = float(x.std() / math.sqrt(len(x)))
    assert se["mean"] == pytest.approx(analytic, rel=0.08)  # the bootstrap's own error is ~1/sqrt(2 * 2000)


def test_floors_are_over_distinct_random_subsets_with_a_spread() -> None:
    floors = evaluate.floor(data.dataset("8gaussians"), 200)
    assert set(floors) == {"mmd", "one_nn", "high_quality_share", "modes_covered"}
    assert floors["mmd"][1] > 0 and floors["one_nn"][1] > 0
    subsets = [torch.randperm(100_000, generator=torch.Generator().manual_seed(k))[:200] for k in range(5)]
    assert len({tuple(s.tolist()) for s in subsets}) == 5
    # the mean is the mean of the distances of those subsets, computed one by one
    train = data.load("8gaussians", "train")
    by_hand = [metrics.toy_sample_quality(train[s], data.dataset("8gaussians"))["mmd"] for s in subsets]
    assert floors["mmd"][0] == pytest.approx(sum(by_hand) / 5)


def test_digit_floor_is_a_mean_over_random_subsets_not_the_first_rows() -> None:
    floors = evaluate.floor(data.dataset("digits"), 447)
    assert all(sd > 0 for _, sd in floors.values())
    first_rows = metrics.sample_quality(data.digits("train")[0][:447], data.dataset("digits").test)
    assert first_rows["fd"] != pytest.approx(floors["fd"][0])


def test_evaluate_samples_gives_each_distance_an_error_and_a_floor() -> None:
    samples = data.toy("ring", 300, seed=77)
    result = evaluate.evaluate_samples(samples, data.dataset("ring"), replicates=20)
    assert set(result.distances) == {"mmd", "one_nn"} and result.samples == 300
    for d in result.distances.values():
        assert d.stderr > 0 and d.floor_sd > 0
    # real data: its distance is within a few spreads of the floor
    one_nn = result.distances["one_nn"]
    assert abs(one_nn.value - one_nn.floor) < 4 * math.hypot(one_nn.stderr, one_nn.floor_sd)
    d = result.to_dict()
    assert d["sample_quality"]["mmd"] == result.distances["mmd"].value
    assert d["sample_quality_floor_sd"]["one_nn"] == one_nn.floor_sd


def test_evaluate_model_combines_both_and_draws_reproducibly() -> None:
    model = _Gaussian2D((0.0, 0.0), (1.0, 1.0))
    a = evaluate.evaluate_model(model, data.dataset("moons"), samples=100, examples=100).to_dict()
    b = evaluate.evaluate_model(model, data.dataset("moons"), samples=100, examples=100).to_dict()
    assert a == b and a["model"] == "_Gaussian2D" and a["samples"] == 100 and "kl" in a


def test_the_command_line_prints_errors_floors_and_the_negative_kl_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from gdl_ref import cli

    cli._print_metrics({"test_nll": 1.5, "test_nll_stderr": 0.02, "kl": -0.05, "kl_stderr": 0.01, "kl_negative": True,
                        "sample_quality": {"mmd": 0.1}, "sample_quality_stderr": {"mmd": 0.01},
                        "sample_quality_floor": {"mmd": 0.05}, "sample_quality_floor_sd": {"mmd": 0.005}})
    out = capsys.readouterr().out
    assert "test_nll: 1.5000 +- 0.0200" in out and "kl: -0.0500 +- 0.0100" in out
    assert "below zero by more than its standard error" in out
    assert "mmd: 0.1000 +- 0.0100   (floor 0.0500 +- 0.0050)" in out


class _TrueToy(torch.nn.Module):
    """The 8gaussians density itself, moved by ``move``: a model whose KL from the moved truth is exactly zero."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, move: data.Move | None, offset: float = 0.0) -> None:
        super().__init__()
        self.move, self.offset = move, offset

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        lp = self.move.log_prob("8gaussians", x) if self.move else data.toy_log_prob("8gaussians", x)
        return lp + self.offset


@pytest.mark.parametrize("move", data.MOVES, ids=lambda m: m.label("toy"))
def test_the_paired_kl_on_a_moved_toy_is_against_the_moved_density(move: data.Move) -> None:
    exact = evaluate.evaluate_density(_TrueToy(move), data.dataset("8gaussians", move))
    assert exact.kl == pytest.approx(0.0, abs=1e-6) and exact.kl_stderr == pytest.approx(0.0, abs=1e-6)  # float32
    assert exact.entropy == pytest.approx(data.toy_entropy("8gaussians").nats + 2 * math.log(move.scale))
    # a density lower everywhere by 0.3 nats (not normalised, so only a check of the arithmetic): KL + 0.3
    off = evaluate.evaluate_density(_TrueToy(move, -0.3), data.dataset("8gaussians", move))
    assert off.kl == pytest.approx(0.3, abs=1e-6)
    # unmoved, the moved model is scored on points where it puts the wrong density: not zero
    assert abs(evaluate.evaluate_density(_TrueToy(move), data.dataset("8gaussians")).kl) > 0.1
    with pytest.raises(ValueError, match="only a 2-D toy can be moved"):
        data.dataset("digits", move)


@pytest.mark.parametrize("move", data.MOVES, ids=lambda m: m.label("toy"))
def test_samples_of_a_moved_toy_are_scored_in_the_toys_own_frame(move: data.Move) -> None:
    """evaluate_samples moves a moved toy's samples back: the same points score the same, moved or not,
    against the same floor."""
    points = data.toy("ring", 300, seed=77)
    plain = evaluate.evaluate_samples(points, data.dataset("ring"), replicates=10)
    moved = evaluate.evaluate_samples(move.apply(points), data.dataset("ring", move), replicates=10)
    for key, d in plain.distances.items():
        m = moved.distances[key]
        assert m.value == pytest.approx(d.value, abs=1e-5) and (m.floor, m.floor_sd) == (d.floor, d.floor_sd)
