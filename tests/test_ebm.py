"""Energy-based model: Langevin dynamics against a Gaussian it must sample, gradient clipping, the
contrastive-divergence loss against its formula, the replay buffer's reuse rate, one training step,
the model contract, and a short fit that must put low energy on the data."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gdl_ref import data as gdata
from gdl_ref.models.ebm import build, contrastive_divergence, langevin


# ------------------------------------------------------------------------------ Langevin
def test_langevin_samples_a_gaussian_from_its_quadratic_energy() -> None:
    torch.manual_seed(0)
    mu = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[1.0, 0.5], [0.5, 0.8]])
    prec = torch.linalg.inv(cov)

    def energy(x: torch.Tensor) -> torch.Tensor:  # E(x) = (x - mu)^T P (x - mu) / 2, so p = N(mu, P^-1)
        d = x - mu
        return 0.5 * ((d @ prec) * d).sum(1)

    eps = 0.01
    x = langevin(energy, torch.zeros(4000, 2), steps=1500, step_size=eps, noise=(2 * eps) ** 0.5)
    # the chain forgets its start (contraction (1 - eps * 0.7)^1500 ~ 3e-5); the step-size bias is ~1%
    assert torch.allclose(x.mean(0), mu, atol=0.06)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.08)
    # and the test can fail: too little noise shrinks the covariance
    cold = langevin(energy, torch.zeros(4000, 2), steps=1500, step_size=eps, noise=0.5 * (2 * eps) ** 0.5)
    assert not torch.allclose(torch.cov(cold.T), cov, atol=0.08)


def test_langevin_clips_each_gradient_component_and_respects_the_box() -> None:
    energy = lambda x: 100.0 * x.sum(1)  # grad = 100 everywhere
    x0 = torch.zeros(5, 3)
    one = langevin(energy, x0, steps=1, step_size=0.5, noise=0.0, grad_clip=0.03)
    assert torch.allclose(one, torch.full((5, 3), -0.5 * 0.03))  # x - eps * clip(grad)
    many = langevin(energy, x0, steps=200, step_size=0.5, noise=0.0, grad_clip=0.03, bound=1.0)
    assert torch.allclose(many, torch.full((5, 3), -1.0))  # clamped to [-1, 1]
    with torch.no_grad():  # runs under no_grad too (validation)
        assert langevin(energy, x0, steps=2, step_size=0.1, noise=0.0).shape == (5, 3)


# ------------------------------------------------------------------------------ loss
def test_contrastive_divergence_is_its_formula() -> None:
    e_pos = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    e_neg = torch.tensor([1.0, 3.0], requires_grad=True)
    loss = contrastive_divergence(e_pos, e_neg, alpha=0.1)
    expected = (0.5 - 1.0 + 2.0) / 3 - (1.0 + 3.0) / 2 + 0.1 * ((0.25 + 1 + 4) / 3 + (1 + 9) / 2)
    assert loss.item() == pytest.approx(expected)
    loss.backward()  # d/dE+ = 1/B + 2 alpha E+/B: energy goes down on data, up on samples
    assert torch.allclose(e_pos.grad, (1 + 0.2 * e_pos.detach()) / 3)
    assert torch.allclose(e_neg.grad, (-1 + 0.2 * e_neg.detach()) / 2)


# ------------------------------------------------------------------------------ buffer and step
def test_chains_restart_from_noise_at_rate_one_minus_reuse() -> None:
    torch.manual_seed(0)
    model = build("8gaussians", buffer_size=500, reuse=0.95)
    model.buffer.fill_(5.0)  # outside the noise box [-3, 3]
    idx, x0 = model.chains(8000)
    fresh = (x0 != 5.0).all(1).float().mean().item()
    assert fresh == pytest.approx(0.05, abs=0.01)
    assert idx.min() >= 0 and idx.max() < 500
    assert (x0[(x0 != 5.0).all(1)].abs() <= 3.0).all()  # U[-bound, bound]


def test_training_step_writes_the_buffer_and_moves_the_energy() -> None:
    torch.manual_seed(0)
    model = build("digits", width=8, steps=3, buffer_size=256)
    opts = model.configure_optimizers(lr=123.0)  # fit's lr is ignored: the config's holds
    assert opts["energy"].param_groups[0]["lr"] == 1e-4 and opts["energy"].param_groups[0]["betas"] == (0.0, 0.999)
    buffer0 = model.buffer.clone()
    weights0 = [p.detach().clone() for p in model.parameters()]
    logs = model.training_step((gdata.digits("train")[0][:16],), opts, 0)
    rows_changed = (model.buffer != buffer0).flatten(1).any(1).sum().item()
    assert 1 <= rows_changed <= 16  # the new negatives went back where their chains came from
    assert model.buffer.abs().max() <= 1.0
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), weights0))
    assert set(logs) == {"loss", "e_data", "e_sample"}
    buffer1 = model.buffer.clone()
    model.loss(gdata.digits("val")[0][:16])  # validation does not touch the buffer
    assert torch.equal(model.buffer, buffer1)


# ------------------------------------------------------------------------------ contract
def test_samples_and_losses_have_the_contract_shapes() -> None:
    torch.manual_seed(0)
    model = build("digits", width=8, sample_steps=2, buffer_size=64)
    s = model.sample(70)  # more than the buffer holds
    assert s.shape == (70, 1, 8, 8) and s.dtype == torch.int64 and 0 <= s.min() and s.max() <= 16
    assert model.sample(3, from_noise=True, steps=1).shape == (3, 1, 8, 8)
    assert model.loss(gdata.digits("val")[0][:4]).shape == ()
    toy = build("ring", width=16, sample_steps=2, buffer_size=64)
    assert toy.sample(5).shape == (5, 2) and toy.sample(5).dtype == torch.float32
    assert toy.config.sigma == pytest.approx((2 * toy.config.step_size) ** 0.5)  # exact Langevin on toys
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, 8, 8\), got \(3, 64\)"):
        model.loss(torch.zeros(3, 64, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 2\)"):
        toy.loss(torch.zeros(3, 1, 8, 8))


def test_build_validates_and_rebuilds() -> None:
    with pytest.raises(ValueError, match="valid: digits, moons"):
        build("cifar")
    with pytest.raises(TypeError, match="unknown EBMConfig field.*langevin_steps"):
        build("digits", langevin_steps=3)
    with pytest.raises(ValueError, match="reuse"):
        build("digits", reuse=1.5)
    model = build("moons", width=24, buffer_size=100)
    config = dataclasses.asdict(model.config)
    config["betas"] = list(config["betas"])  # as it comes back from JSON
    again = build("moons", **config)
    assert again.config == model.config
    again.load_state_dict(model.state_dict())  # the buffer travels with the weights
    assert torch.equal(again.buffer, model.buffer)


# ------------------------------------------------------------------------------ learning
def test_a_short_fit_puts_low_energy_on_the_data() -> None:
    from gdl_ref.train import fit

    torch.manual_seed(0)
    model = build("8gaussians", steps=10, buffer_size=1000)
    fit(model, gdata.load("8gaussians"), steps=150, batch_size=128, seed=0)
    data = model.prepare(gdata.toy("8gaussians", 1000, seed=5))
    noise = torch.rand(4000, 2) * 6 - 3  # U[-3, 3]^2
    far = noise[torch.cdist(noise, gdata._gauss8_means().float()).min(1).values > 3 * gdata.GAUSS8_STD]
    with torch.no_grad():
        e_data, e_far = model.energy(data), model.energy(far)
    below = (e_data[:, None] < e_far[None, :]).float().mean().item()  # P(E(data) < E(off the modes))
    assert below > 0.9
