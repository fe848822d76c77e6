"""GANs: the gradient penalty against an independent computation, which weights each step updates,
the losses against the cross-entropy they stand for, the model contract, and a mixture whose modes
a trained GAN must recover."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gdl_ref import data as gdata
from gdl_ref.models.gan import GAN, build, gradient_penalty


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, q) for p, q in zip(module.parameters(), before))


def _critic_modules(model: GAN) -> list[torch.nn.Module]:
    return [model.features, model.head]


# ------------------------------------------------------------------------------ gradient penalty
@pytest.mark.parametrize("shape", [(16, 2), (8, 1, 8, 8)])
def test_penalty_of_a_linear_critic_is_the_weight_norm_gap(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    d = math.prod(shape[1:])
    w = torch.randn(d, requires_grad=True)
    critic = lambda x: x.flatten(1) @ w + 0.3  # grad_x D = w everywhere
    real, fake = torch.randn(shape), torch.randn(shape)
    gp = gradient_penalty(critic, real, fake)
    expected = (w.detach().norm() - 1) ** 2  # (||w|| - 1)^2, whatever the interpolation weights
    assert torch.allclose(gp, expected, rtol=1e-5)
    # the graph is kept: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    gp.backward()
    wn = w.detach().norm()
    assert torch.allclose(w.grad, 2 * (wn - 1) * w.detach() / wn, rtol=1e-4, atol=1e-6)


def test_penalty_interpolates_with_one_uniform_weight_per_example() -> None:
    torch.manual_seed(1)
    real, fake = torch.randn(32, 1, 8, 8), torch.randn(32, 1, 8, 8)
    critic = lambda x: 0.5 * (x.flatten(1) ** 2).sum(1)  # grad_x D(x) = x
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(32, 1, 1, 1, generator=torch.Generator().manual_seed(7))  # eps ~ U[0, 1] per example
    x_hat = eps * real + (1 - eps) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, rtol=1e-5)
    assert eps.min() >= 0 and eps.max() <= 1 and eps.unique().numel() == 32
    # a different draw of eps gives a different penalty: eps is random, not a constant
    other = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(gp, other)


# ------------------------------------------------------------------------------ losses
def test_dcgan_losses_are_the_cross_entropies_of_the_paper() -> None:
    torch.manual_seed(0)
    model = build("8gaussians", objective="dcgan", width=16).eval()
    real = gdata.toy("8gaussians", 64)
    torch.manual_seed(3)
    d_loss, _ = model.critic_loss(real)
    torch.manual_seed(3)
    fake = model.generate(64)
    with torch.no_grad():
        d_real, d_fake = model.critic(real), model.critic(fake)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(d_real, torch.ones(64)) + bce(d_fake, torch.zeros(64))  # -log D(x) - log(1 - D(G(z)))
    assert torch.allclose(d_loss, expected, rtol=1e-5)
    torch.manual_seed(4)
    g_loss = model.generator_loss(64)
    torch.manual_seed(4)
    with torch.no_grad():
        non_saturating = bce(model.critic(model.generate(64)), torch.ones(64))  # -log D(G(z))
    assert torch.allclose(g_loss, non_saturating, rtol=1e-5)


def test_wgan_loss_is_the_negative_wasserstein_estimate() -> None:
    torch.manual_seed(0)
    model = build("8gaussians", width=16).eval()
    real = gdata.toy("8gaussians", 64)
    torch.manual_seed(5)
    loss = model.loss(real)  # no penalty
    torch.manual_seed(5)
    with torch.no_grad():
        expected = model.critic(model.generate(64)).mean() - model.critic(real).mean()
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ which weights move
@pytest.mark.parametrize("objective", ["wgan-gp", "dcgan"])
def test_each_step_updates_only_its_own_network(objective: str) -> None:
    torch.manual_seed(0)
    model = build("digits", objective=objective, width=8, conditional=True)
    opts = model.configure_optimizers()
    x, y = gdata.digits("train")
    real, labels = model.prepare(x[:16]), y[:16]

    g0, c0 = _snapshot(model.generator), [_snapshot(m) for m in _critic_modules(model)]
    model.critic_step(real, labels, opts["critic"])
    assert not _changed(model.generator, g0)
    assert all(_changed(m, s) for m, s in zip(_critic_modules(model), c0))

    c1 = [_snapshot(m) for m in _critic_modules(model)] + [_snapshot(model.embed)]
    model.generator_step(16, labels, opts["generator"])
    assert _changed(model.generator, g0)
    assert not any(_changed(m, s) for m, s in zip(_critic_modules(model) + [model.embed], c1))
    assert all(p.requires_grad for p in model.parameters())  # the critic is unfrozen again


def test_training_step_follows_n_critic() -> None:
    torch.manual_seed(0)
    model = build("8gaussians", width=16)  # wgan-gp: n_critic = 5
    opts = model.configure_optimizers()
    batch = (gdata.toy("8gaussians", 32),)
    g0 = _snapshot(model.generator)
    for step in range(4):
        model.training_step(batch, opts, step)
    assert not _changed(model.generator, g0)  # four critic steps, no generator step yet
    c4 = [_snapshot(m) for m in _critic_modules(model)]
    logs = model.training_step(batch, opts, 4)  # the fifth: critic, then generator
    assert _changed(model.generator, g0) and all(_changed(m, s) for m, s in zip(_critic_modules(model), c4))
    assert set(logs) == {"critic", "wasserstein", "generator"} and math.isfinite(logs["generator"])


def test_fit_drives_both_networks_through_the_hooks() -> None:
    from gdl_ref.train import fit

    model = build("8gaussians", objective="dcgan", width=16)
    g0, c0 = _snapshot(model.generator), _snapshot(model.features)
    history = fit(model, gdata.toy("8gaussians", 256), steps=3, batch_size=64, log_every=1)
    assert history.steps == 3 and "generator" in history.train[-1]
    assert _changed(model.generator, g0) and _changed(model.features, c0)


# ------------------------------------------------------------------------------ contract
def test_paper_defaults_reach_the_optimisers() -> None:
    wgan, dcgan = build("digits"), build("digits", objective="dcgan")
    assert (wgan.config.n_critic, wgan.config.lr, wgan.config.betas, wgan.config.gp_lambda) == (5, 1e-4, (0.0, 0.9), 10.0)
    assert (dcgan.config.n_critic, dcgan.config.lr, dcgan.config.betas) == (1, 2e-4, (0.5, 0.999))
    for model in (wgan, dcgan):
        opts = model.configure_optimizers(lr=123.0)  # fit's lr does not override the config
        assert set(opts) == {"generator", "critic"}
        for opt in opts.values():
            group = opt.param_groups[0]
            assert (group["lr"], group["betas"]) == (model.config.lr, model.config.betas)
        n_opt = sum(p.numel() for o in opts.values() for g in o.param_groups for p in g["params"])
        assert n_opt == sum(p.numel() for p in model.parameters())  # every weight in exactly one optimiser


def test_samples_and_losses_have_the_contract_shapes() -> None:
    torch.manual_seed(0)
    model = build("digits", width=8)
    s = model.sample(5)
    assert s.shape == (5, 1, 8, 8) and s.dtype == torch.int64 and 0 <= s.min() and s.max() <= 16
    assert model.loss(gdata.digits("val")[0][:8]).shape == ()
    toy = build("moons", width=16)
    assert toy.sample(7).shape == (7, 2) and toy.sample(7).dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, 8, 8\), got \(3, 64\)"):
        model.loss(torch.zeros(3, 64, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 2\)"):
        toy.loss(torch.zeros(3, 3))


def test_conditional_generator_takes_labels() -> None:
    torch.manual_seed(0)
    model = build("digits", width=8, conditional=True)
    x, y = gdata.digits("val")
    assert model.loss(x[:8], y[:8]).shape == ()
    assert model.sample(4, y=3).shape == (4, 1, 8, 8)
    assert model.sample(12).shape == (12, 1, 8, 8)  # labels cycle 0..9
    with pytest.raises(ValueError, match="pass the labels"):
        model.loss(x[:8])
    with pytest.raises(ValueError, match="only data='digits'"):
        build("8gaussians", conditional=True)


def test_build_validates_and_rebuilds() -> None:
    with pytest.raises(ValueError, match="valid: digits, moons"):
        build("mnist")
    with pytest.raises(TypeError, match="unknown GANConfig field.*n_critics"):
        build("digits", n_critics=3)
    with pytest.raises(ValueError, match=r"GANConfig.objective = .lsgan.: must be one of .dcgan., .wgan-gp."):
        build("digits", objective="lsgan")
    model = build("ring", objective="dcgan", width=24)
    config = dataclasses.asdict(model.config)
    config["betas"] = list(config["betas"])  # as it comes back from JSON
    again = build("ring", **config)
    assert again.config == model.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ learning
@pytest.mark.slow
def test_gan_recovers_the_eight_modes() -> None:
    from gdl_ref.metrics import toy_sample_quality
    from gdl_ref.train import fit

    torch.manual_seed(0)
    model = build("8gaussians", objective="dcgan", width=64, lr=1e-3)
    fit(model, gdata.load("8gaussians"), steps=2500, batch_size=64, seed=0)
    torch.manual_seed(1)
    quality = toy_sample_quality(model.sample(2000), gdata.dataset("8gaussians"))
    assert quality["modes_covered"] == 8
    assert quality["high_quality_share"] > 0.7
