"""RealNVP / spline flows: invertibility, exact log-determinants, normalisation, the dequantised bound."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gdl_ref import data
from gdl_ref.likelihood import Bound
from gdl_ref.models import flows


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_flow(coupling: str, data_name: str = "moons", scale: float = 0.3, **kw: object) -> flows.CouplingFlow:
    """A flow whose couplings are far from the identity (the zero-initialised last layers get weights)."""
    model = flows.build(data_name, coupling=coupling, **kw).double()
    with torch.no_grad():
        for layer in model.layers:
            last = layer.net[-1]
            last.weight.normal_(0, scale)
            last.bias.normal_(0, scale)
    return model.eval()


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_invertible(coupling: str) -> None:
    model = _random_flow(coupling)
    x = 1.5 * torch.randn(500, 2, dtype=torch.float64)
    z, _ = model(x)
    assert (z - x).abs().max() > 0.1  # the map is not the identity
    assert torch.allclose(model.inverse(z), x, atol=1e-5)


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_log_det_matches_autograd_jacobian(coupling: str) -> None:
    model = _random_flow(coupling)
    for x in 1.5 * torch.randn(10, 2, dtype=torch.float64):
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0][0], x)  # (2, 2)
        _, logdet = model(x[None])
        assert logdet.item() == pytest.approx(torch.linalg.slogdet(jac).logabsdet.item(), abs=1e-8)


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_density_integrates_to_one(coupling: str) -> None:
    model = _random_flow(coupling, scale=0.2, layers=3, hidden=16, bins=8)
    x = torch.randn(2000, 2, dtype=torch.float64)
    assert (model(x)[0] - x).abs().mean() > 0.1  # far from the identity
    step = 0.04
    g = torch.arange(-8, 8, step, dtype=torch.float64) + step / 2
    grid = torch.cartesian_prod(g, g)  # midpoints of a 400 x 400 grid on [-8, 8]^2
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum().item() * step**2
    assert abs(mass - 1.0) < 1e-2


def test_rq_spline_inverse_derivative_and_tails() -> None:
    k, bound = 8, 3.0
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    w, h, d = (torch.randn(801, n, dtype=torch.float64) for n in (k, k, k - 1))
    y, logdet = flows.rq_spline(x, w, h, d, bound)
    back, inv_logdet = flows.rq_spline(y, w, h, d, bound, inverse=True)
    assert torch.allclose(back, x, atol=1e-9)
    assert torch.allclose(inv_logdet, -logdet, atol=1e-9)
    eps = 1e-6  # central finite difference of y(x) with the same spline parameters
    fd = (flows.rq_spline(x + eps, w, h, d, bound)[0] - flows.rq_spline(x - eps, w, h, d, bound)[0]) / (2 * eps)
    inside = x.abs() < bound - 1e-3
    assert torch.allclose(fd[inside].log(), logdet[inside], atol=1e-5)
    outside = x.abs() > bound
    assert torch.equal(y[outside], x[outside]) and torch.all(logdet[outside] == 0)


def test_digits_log_prob_is_the_dequantised_bound() -> None:
    """-log_prob(x) = -log p_Y((x + u)/17) + 64 log 17 with u ~ U[0,1) from the same generator."""
    model = flows.build("digits", layers=2, hidden=16).eval()  # couplings start as the identity
    x, _ = data.digits("test")
    x = x[:5]
    lp = model.log_prob(x, generator=torch.Generator().manual_seed(3))
    y = data.dequantize(x, torch.Generator().manual_seed(3)).flatten(1).double()  # (5, 64) in [0, 1)
    a = model.config.logit_alpha
    s = a + (1 - 2 * a) * y
    v = torch.log(s / (1 - s))  # identity flow: z = v
    log_py = (-0.5 * v**2 - 0.5 * math.log(2 * math.pi) + math.log(1 - 2 * a) - torch.log(s * (1 - s))).sum(1)
    assert torch.allclose(lp.double(), log_py - 64 * math.log(17), atol=1e-3)
    assert model.bound is Bound.DEQUANTIZED and flows.build("moons").bound is Bound.DIFFERENTIAL
    assert model.bound is Bound.DEQUANTIZED


def test_variational_dequantiser_density_is_its_change_of_variables() -> None:
    """log q(u | x) = log N(eps) - log|du/deps|, the Jacobian (diagonal) taken by autograd; u in (0, 1)."""
    torch.manual_seed(0)
    model = flows.build("digits", layers=2, hidden=16, dequantization="variational", dequant_hidden=32).double()
    for p in model.dequantizer.parameters():
        torch.nn.init.normal_(p, std=0.3)   # a q far from uniform
    x, _ = data.digits("test")
    levels = x[:4].flatten(1)  # (4, 64)
    u, log_q = model.dequantize(levels, torch.Generator().manual_seed(5))
    eps = torch.randn(levels.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mean, log_scale = model.dequantizer(2 * levels.double() / 16 - 1).chunk(2, dim=-1)

    def u_of(e: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(mean + log_scale.clamp(-6.0, 2.0).exp() * e)

    jac = torch.autograd.functional.jacobian(lambda e: u_of(e).sum(0), eps)  # (64, 4, 64): du_j / deps_bj
    diag = torch.stack([torch.diagonal(jac[:, b, :]) for b in range(4)])      # (4, 64)
    expected = (-0.5 * eps**2 - 0.5 * math.log(2 * math.pi)).sum(1) - diag.abs().log().sum(1)
    assert torch.allclose(u, u_of(eps)) and bool(((u > 0) & (u < 1)).all())
    assert torch.allclose(log_q, expected, atol=1e-8)
    assert log_q.std() > 1.0   # not the uniform q, whose log-density is 0


def test_variational_bound_subtracts_log_q_and_trains_the_dequantiser() -> None:
    model = flows.build("digits", layers=2, hidden=16, dequantization="variational", dequant_hidden=32)
    x, _ = data.digits("test")
    x = x[:6]
    lp = model.log_prob(x, generator=torch.Generator().manual_seed(2))
    u, log_q = model.dequantize(x.flatten(1), torch.Generator().manual_seed(2))
    v, logdet = flows.to_logit((x.flatten(1).float() + u) / 17, model.config.logit_alpha)
    by_hand = model.log_prob_continuous(v) + logdet - log_q - 64 * math.log(17)
    assert torch.allclose(lp, by_hand, atol=1e-4)
    (-lp.mean()).backward()
    last = model.dequantizer[-1]   # starts at zero: q starts as u = sigmoid(N(0, 1)) in each level
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="dequantization"):
        flows.build("digits", dequantization="learned")


def test_digits_flow_invertible_and_samples() -> None:
    model = _random_flow("affine", "digits", layers=4, hidden=16)
    v = torch.randn(8, 64, dtype=torch.float64)
    assert torch.allclose(model.inverse(model(v)[0]), v, atol=1e-5)
    s = model.float().sample(3)
    assert s.dtype == torch.int64 and s.shape == (3, 1, 8, 8) and 0 <= s.min() and s.max() <= 16
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model.log_prob(torch.zeros(2, 64, dtype=torch.long))


@pytest.mark.parametrize("data_name", ["digits", "checkerboard"])
def test_build_contract(data_name: str) -> None:
    model = flows.build(data_name)
    assert model.config.data == data_name
    again = flows.build(data_name, **dataclasses.asdict(model.config))
    again.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="checkerboard"):
        flows.build("spiral")
    with pytest.raises(TypeError, match="layerz"):
        flows.build(data_name, layerz=3)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        flows.build("moons").log_prob(torch.zeros(3, 3))
