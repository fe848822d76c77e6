"""The 2-D density models standardise on their training data: a density that integrates to one wherever the data
lie, and the same fit (the same KL from the truth) on a toy moved and rescaled."""

from __future__ import annotations

import math

import pytest
import torch

from gdl_ref import data
from gdl_ref.models import registry
from gdl_ref.train import fit

SMALL = {"flow": {"layers": 4, "hidden": 32, "bins": 8}, "autoregressive": {"hidden": 32, "components": 8},
         "vae": {"hidden": 32, "iwae_k": 20}, "diffusion": {"channels": 32, "timesteps": 20}}


def _moved(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    return x * scale + shift


@pytest.mark.parametrize("family", ["flow", "autoregressive"])  # the exact densities
def test_density_integrates_to_one_on_data_far_from_the_origin(family: str) -> None:
    torch.manual_seed(0)
    model = registry.build(family, "moons", **SMALL[family]).double()
    with torch.no_grad():  # weights far from their initial values, so the density is not a plain Gaussian
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    train = _moved(data.load("moons", "train")[:5000].double(), 10.0, 5.0)
    model.standardize.set_from(train)
    mean, std = model.standardize.mean, model.standardize.std
    assert mean.min() > 3 and std.min() > 3  # the layer took the data's location and scale
    n = 300
    axes = [torch.linspace(float(m - 9 * s), float(m + 9 * s), n, dtype=torch.float64) for m, s in zip(mean, std)]
    cell = float((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))
    grid = torch.cartesian_prod(*axes)  # (n^2, 2)
    mass = model.log_prob(grid).exp().sum().item() * cell
    assert mass == pytest.approx(1.0, abs=0.02)


def _kl(model: torch.nn.Module, scale: float, shift: float) -> tuple[float, float]:
    """Paired KL(p || q) on the moved test split: mean of log p_true(x) - log q(x), and its standard error."""
    test = data.load("moons", "test")
    log_p = data.toy_log_prob("moons", test).double() - 2 * math.log(scale)  # the density of a x + b
    with torch.no_grad():
        torch.manual_seed(1)  # the bounds draw their Monte-Carlo samples from the global generator
        log_q = model.log_prob(_moved(test, scale, shift)[:500]).double()
    log_p = log_p[:500]
    diff = log_p - log_q
    return float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))


@pytest.mark.parametrize("family", list(SMALL))
def test_a_moved_and_rescaled_toy_is_fitted_as_well_as_the_original(family: str) -> None:
    train = data.load("moons", "train")[:20_000]
    kls = {}
    for scale, shift in ((1.0, 0.0), (0.1, 0.0), (10.0, 0.0), (1.0, 5.0)):
        torch.manual_seed(0)
        model = registry.build(family, "moons", **SMALL[family])
        fit(model, _moved(train, scale, shift), steps=150, batch_size=256, lr=3e-3, seed=0, progress=False)
        kls[(scale, shift)] = _kl(model, scale, shift)
    torch.manual_seed(0)
    untrained = registry.build(family, "moons", **SMALL[family])
    untrained.standardize.set_from(train)
    reference, se = kls[(1.0, 0.0)]
    assert reference < _kl(untrained, 1.0, 0.0)[0] - 0.1, kls  # training brought the model closer to the truth
    for key, (kl, _) in kls.items():
        assert abs(kl - reference) < max(0.02, 2 * se), (key, kls)
