"""Tests of gdl_ref.likelihood: the discretised log-probabilities against exact arithmetic (mpmath) at extreme
means and scales, their gradients, the normal log-density, the units, and the eval-mode decorator."""

from __future__ import annotations

import itertools
import math

import mpmath
import pytest
import torch
from torch import nn

from gdl_ref import likelihood as lk
from gdl_ref.likelihood import Bound
from gdl_ref.models import registry

LEVELS = 17
MEANS = (-3.0, -1.0, -0.4, 0.0, 0.53, 1.0, 4.0)
SCALES = (1e-3, 0.02, 0.3, 1.0, 30.0)
mpmath.mp.dps = 60


def _edges(k: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    h = mpmath.mpf(1) / (LEVELS - 1)
    c = 2 * mpmath.mpf(k) / (LEVELS - 1) - 1
    lo = -mpmath.inf if k == 0 else c - h
    hi = mpmath.inf if k == LEVELS - 1 else c + h
    return lo, hi


def _exact(k: int, mean: float, cdf) -> float:
    """log(F(hi) - F(lo)) for a distribution symmetric about ``mean`` with CDF ``cdf``, in 60-digit arithmetic;
    a bin above the mean is read as F(2 mean - lo) - F(2 mean - hi), so no digits cancel near F = 1."""
    lo, hi = _edges(k)
    if lo + hi > 2 * mpmath.mpf(mean):
        lo, hi = 2 * mpmath.mpf(mean) - hi, 2 * mpmath.mpf(mean) - lo
    return float(mpmath.log(cdf(hi) - cdf(lo)))


def _exact_gaussian(k: int, mean: float, std: float) -> float:
    return _exact(k, mean, lambda t: mpmath.ncdf(t, mean, std))


def _exact_logistic(k: int, mean: float, log_scale: float) -> float:
    s = mpmath.exp(log_scale)
    return _exact(k, mean, lambda t: 1 / (1 + mpmath.exp(-(t - mean) / s)))


def _grid(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = list(itertools.product(range(LEVELS), MEANS, SCALES))
    x = torch.tensor([r[0] for r in rows])
    mean = torch.tensor([r[1] for r in rows], dtype=dtype)
    scale = torch.tensor([r[2] for r in rows], dtype=dtype)
    return x, mean, scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_discretised_gaussian_matches_exact_arithmetic(dtype: torch.dtype) -> None:
    x, mean, std = _grid(dtype)
    ours = lk.discretised_gaussian_log_prob(x, mean, std, LEVELS).double()
    exact = torch.tensor([_exact_gaussian(int(k), float(m), float(s)) for k, m, s in zip(x, mean, std)],
                         dtype=torch.float64)
    assert exact.min() < -1e6  # the grid reaches far into the tails
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(ours, exact, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_discretised_logistic_matches_exact_arithmetic(dtype: torch.dtype) -> None:
    x, mean, scale = _grid(dtype)
    log_scale = scale.log()
    ours = lk.discretised_logistic_log_prob(x, mean, log_scale, LEVELS).double()
    exact = torch.tensor([_exact_logistic(int(k), float(m), float(s)) for k, m, s in zip(x, mean, log_scale)],
                         dtype=torch.float64)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(ours, exact, rtol=rtol, atol=rtol)


def test_tail_pixel_keeps_its_value_and_gradient() -> None:
    # Level 0 predicted at mean 1 with std 0.05: log P = log Phi(-38.75), about -755 nats; a clamp of the
    # probability at 1e-12 would report -27.6 and a zero gradient.
    mean = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    std = torch.tensor([0.05], dtype=torch.float64)
    lp = lk.discretised_gaussian_log_prob(torch.tensor([0]), mean, std, LEVELS)
    value = lp.item()
    assert value == pytest.approx(_exact_gaussian(0, 1.0, 0.05), rel=1e-10) and value < -700
    (grad,) = torch.autograd.grad(lp.sum(), mean)
    step = 1e-6  # central difference of the exact value
    fd = (_exact_gaussian(0, 1.0 + step, 0.05) - _exact_gaussian(0, 1.0 - step, 0.05)) / (2 * step)
    assert float(grad) == pytest.approx(fd, rel=1e-5) and float(grad) < -700


@pytest.mark.parametrize("fn", [lk.discretised_gaussian_log_prob, lk.discretised_logistic_log_prob])
def test_discretised_gradients_are_finite_and_match_finite_differences(fn) -> None:
    x, mean, scale = _grid(torch.float64)
    keep = scale > 1e-2  # finite differences need a scale that a step of 1e-6 does not disturb
    x, mean, scale = x[keep], mean[keep].requires_grad_(), scale[keep].requires_grad_()
    second = scale if fn is lk.discretised_gaussian_log_prob else scale.log()
    assert torch.autograd.gradcheck(lambda m, s: fn(x, m, s, LEVELS), (mean, second.detach().requires_grad_()))
    m32 = mean.detach().float().requires_grad_()
    lp = fn(x, m32, second.detach().float(), LEVELS)
    (g,) = torch.autograd.grad(lp.sum(), m32)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("fn,scale", [(lk.discretised_gaussian_log_prob, 0.07),
                                      (lk.discretised_logistic_log_prob, math.log(0.07))])
def test_discretised_probabilities_sum_to_one(fn, scale: float) -> None:
    levels = torch.arange(LEVELS)[:, None]  # (17, 1)
    mean = torch.linspace(-1.5, 1.5, 9, dtype=torch.float64)[None]  # (1, 9)
    total = fn(levels, mean, torch.full_like(mean, scale), LEVELS).exp().sum(0)
    torch.testing.assert_close(total, torch.ones(9, dtype=torch.float64))


def test_log1mexp_matches_direct_formula_and_is_finite_near_zero() -> None:
    a = -torch.logspace(-30, 2, 200, dtype=torch.float64)
    exact = torch.tensor([float(mpmath.log(1 - mpmath.exp(mpmath.mpf(float(v))))) for v in a], dtype=torch.float64)
    torch.testing.assert_close(lk.log1mexp(a), exact, rtol=1e-12, atol=0)
    a32 = torch.tensor([-1e-30, -1e-3, -0.7, -50.0], requires_grad=True)
    lk.log1mexp(a32).sum().backward()
    assert torch.isfinite(a32.grad).all()


def test_normal_log_density_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    x, mu, log_var = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(3))
    ref = torch.distributions.Normal(mu, (0.5 * log_var).exp()).log_prob(x)
    torch.testing.assert_close(lk.normal_log_density(x, mu, log_var), ref)
    torch.testing.assert_close(lk.log_normal(x, mu, log_var), ref.sum(-1))
    assert lk.LOG_2PI == pytest.approx(math.log(2 * math.pi))


def test_units() -> None:
    assert lk.bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    t = lk.bits_per_dim(torch.tensor([0.0, 2 * math.log(2)]), 2)
    assert torch.allclose(t, torch.tensor([0.0, 1.0]))
    # a uniform density on [0, 1)^64 gives the uniform categorical over 17 levels: 64 log 17 nats
    assert float(lk.dequantized_nll(torch.tensor(0.0), dims=64, levels=17)) == pytest.approx(64 * math.log(17))
    assert float(lk.dequantized_nll(torch.tensor(1.0), dims=2, levels=4)) == pytest.approx(1 + 2 * math.log(4))


class _Dropper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    @lk.evaluating
    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x)

    @lk.evaluating
    def fail(self) -> None:
        raise RuntimeError("inside")


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluating_runs_in_eval_mode_and_restores_the_mode(start_training: bool) -> None:
    model = _Dropper().train(start_training)
    x = torch.ones(1000)
    assert torch.equal(model.score(x), x)  # no dropout inside
    assert model.training is start_training and model.drop.training is start_training
    with pytest.raises(RuntimeError, match="inside"):
        model.fail()
    assert model.training is start_training  # restored after an exception too


EXPECTED_BOUNDS = {("autoregressive", "digits"): Bound.EXACT, ("autoregressive", "moons"): Bound.DIFFERENTIAL,
                   ("flow", "digits"): Bound.DEQUANTIZED, ("flow", "moons"): Bound.DIFFERENTIAL,
                   ("vae", "digits"): Bound.IWAE, ("vae", "moons"): Bound.IWAE,
                   ("diffusion", "digits"): Bound.ELBO, ("diffusion", "moons"): Bound.ELBO}


@pytest.mark.parametrize("family", ["autoregressive", "flow", "vae", "diffusion", "gan", "ebm"])
@pytest.mark.parametrize("data", ["digits", "moons"])
def test_every_density_model_states_its_bound(family: str, data: str) -> None:
    model = registry.build(family, data)
    if (family, data) in EXPECTED_BOUNDS:
        assert isinstance(model, lk.DensityModel) and model.bound is EXPECTED_BOUNDS[family, data]
    else:  # GANs and EBMs give no likelihood
        assert not isinstance(model, lk.DensityModel) and getattr(model, "bound", None) is None
