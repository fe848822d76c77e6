"""Tests of gdl_ref.models.vae: the KL, the bounds (ELBO <= IWAE-k <= log p(x)), the likelihoods and the contract."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gdl_ref import data
from gdl_ref.likelihood import Bound
from gdl_ref.models import vae


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_gaussian_kl_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(1)
    mu_q, mu_p = torch.randn(3, generator=g), torch.randn(3, generator=g)
    lv_q, lv_p = torch.randn(3, generator=g) * 0.5, torch.randn(3, generator=g) * 0.5
    z = vae.reparameterise(mu_q.expand(200_000, 3), lv_q.expand(200_000, 3), generator=g)  # z ~ q
    log_ratio = vae.log_normal(z, mu_q, lv_q) - vae.log_normal(z, mu_p, lv_p)  # log q(z) - log p(z)
    mc, se = log_ratio.mean(), log_ratio.std() / math.sqrt(len(log_ratio))
    exact = vae.gaussian_kl(mu_q, lv_q, mu_p, lv_p)
    assert abs(mc - exact) < 4 * se, (mc, exact, se)
    assert vae.gaussian_kl(mu_q, lv_q, mu_q, lv_q).abs() < 1e-6  # KL(q || q) = 0


def test_reparameterised_gradient_matches_analytic() -> None:
    # d/dmu E[z^2] = 2 mu and d/dlogvar E[z^2] = sigma^2 for z ~ N(mu, sigma^2): the gradient flows through z
    mu = torch.tensor([0.7], requires_grad=True)
    logvar = torch.tensor([-0.4], requires_grad=True)
    z = vae.reparameterise(mu, logvar, k=100_000, generator=torch.Generator().manual_seed(2))
    (z ** 2).mean().backward()
    assert mu.grad.item() == pytest.approx(2 * 0.7, abs=0.02)
    assert logvar.grad.item() == pytest.approx(math.exp(-0.4), abs=0.02)


def _linear_gaussian(d_x: int = 4, d_z: int = 2, sigma: float = 0.5):
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I) with W^T W diagonal: exact log p(x) and posterior."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(d_x, d_z, generator=g, dtype=torch.float64))
    W = q * torch.tensor([1.5, 0.8], dtype=torch.float64)  # orthogonal columns: diagonal posterior
    b = torch.randn(d_x, generator=g, dtype=torch.float64)
    x = torch.randn(5, d_x, generator=g, dtype=torch.float64) * 1.5 + b  # 5 data points
    cov = W @ W.T + sigma ** 2 * torch.eye(d_x, dtype=torch.float64)
    log_px = torch.distributions.MultivariateNormal(b, cov).log_prob(x)  # exact log p(x), (5,)

    def log_lik(z: torch.Tensor) -> torch.Tensor:  # (..., 5, d_z) -> (..., 5)
        return vae.log_normal(x, z @ W.T + b, torch.tensor(2 * math.log(sigma), dtype=torch.float64))

    post_var = 1 / (1 + (W ** 2).sum(0) / sigma ** 2)  # (d_z,)
    post_mu = (x - b) @ W / sigma ** 2 * post_var  # (5, d_z)
    return log_lik, log_px, post_mu, post_var.log().expand_as(post_mu)


def test_linear_gaussian_bounds_approach_exact_log_likelihood() -> None:
    log_lik, log_px, post_mu, post_lv = _linear_gaussian()
    g = torch.Generator().manual_seed(4)
    # the exact posterior makes every importance weight equal p(x): ELBO = IWAE = log p(x)
    exact = vae.log_weights(log_lik, post_mu, post_lv, 10, g)
    torch.testing.assert_close(exact, log_px.expand_as(exact), rtol=0, atol=1e-9)
    # a poor q (shifted mean, wrong width): ELBO < log p(x), and IWAE-k closes the gap as k grows
    mu, lv = post_mu + 0.8, post_lv + 1.0
    elbo = vae.log_weights(log_lik, mu, lv, 20_000, g).mean(0)  # E_q[log w]

    def gap(k: int) -> float:  # log p(x) - E[IWAE-k], the expectation over 20_000 / k independent draws
        reps = 20_000 // k
        bound = vae.iwae_bound(log_lik, mu.expand(reps, *mu.shape), lv.expand(reps, *lv.shape), k, g)
        return (log_px - bound.mean(0)).mean().item()

    gaps = [gap(k) for k in (1, 10, 100, 2000)]
    assert (elbo < log_px - 0.1).all()
    assert gaps[0] == pytest.approx((log_px - elbo).mean().item(), rel=0.2)
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] > -0.01  # gap shrinks towards 0, never clearly negative
    assert gaps[3] < 0.05 * gaps[0]


def test_elbo_below_iwae_which_grows_with_k() -> None:
    model = vae.build("digits", hidden=8, latent_dim=4)
    x, _ = data.digits("test")
    x = x[:4]
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        mu, lv = model.encode(x)
        log_w = vae.log_weights(lambda z: model.log_lik(x, z), mu, lv, 2000, g)  # (2000, 4)
    elbo = log_w.mean(0)  # E_q[log w], the ELBO
    bounds = [(torch.logsumexp(log_w.reshape(-1, k, 4), 1) - math.log(k)).mean(0) for k in (1, 10, 100, 500)]
    assert torch.allclose(bounds[0], elbo)
    for lo, hi in zip(bounds, bounds[1:]):
        assert (hi > lo).all()  # averaged over 4000/k draws each, IWAE-k grows with k
    # and the model's terms: elbo = recon - kl, and the closed-form KL is the mean of log q - log p
    terms = model.elbo(x, generator=g)
    torch.testing.assert_close(terms["elbo"], terms["recon"] - terms["kl"])
    assert (terms["kl"] >= 0).all()


@pytest.mark.parametrize("likelihood", vae.LIKELIHOODS)
def test_decoder_samples_follow_the_likelihood(likelihood: str) -> None:
    model = vae.build("digits", hidden=8, latent_dim=3, likelihood=likelihood)
    z = torch.randn(1, 3)
    base = torch.zeros(17, 1, 8, 8, dtype=torch.long)
    base[:, 0, 3, 4] = torch.arange(17)  # pixel (3, 4) takes every level, the rest stay fixed
    with torch.no_grad():
        lp = model.log_lik(base, z.expand(17, 3).unsqueeze(0)).squeeze(0)  # (17,): log p(pixel = k) + const
        draws = model.decode(z.expand(10_000, 3), "sample", torch.Generator().manual_seed(8))[:, 0, 3, 4]
    probs = torch.softmax(lp, 0)  # p(pixel = k | z), given the 17 levels' probabilities sum to one
    freq = torch.bincount(draws, minlength=17).float() / len(draws)
    assert (freq - probs).abs().max() < 0.02, (freq, probs)


def test_logistic_bins_sum_to_one_for_any_mean_and_scale() -> None:
    g = torch.Generator().manual_seed(6)
    mean, log_scale = torch.rand(1, 50, generator=g) * 2.4 - 1.2, torch.randn(1, 50, generator=g) - 2
    levels = torch.arange(17).reshape(17, 1).expand(17, 50)
    p = vae.discretised_logistic_log_prob(levels, mean, log_scale, 17).exp().sum(0)
    torch.testing.assert_close(p, torch.ones(50), atol=1e-5, rtol=0)


def test_contract_digits() -> None:
    model = vae.build("digits", hidden=8)
    x, _ = data.digits("test")
    loss = model.loss(x[:4])
    assert loss.dim() == 0 and torch.isfinite(loss)
    lp = model.log_prob(x[:4], k=20)
    assert lp.shape == (4,) and (lp < 0).all()
    s = model.sample(5)
    assert s.shape == (5, 1, 8, 8) and s.dtype == torch.int64 and 0 <= s.min() and s.max() <= 16
    assert model.interpolate(x[0], x[1], steps=6).shape == (6, 1, 8, 8)
    assert vae.VAE.bound is Bound.IWAE and vae.build("moons").bound is Bound.IWAE
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model.loss(x[:3].reshape(3, 64))


def test_beta_weights_only_the_kl() -> None:
    x, _ = data.digits("train")
    m1 = vae.build("digits", hidden=8, beta=1.0)
    m4 = vae.build("digits", hidden=8, beta=4.0)
    m4.load_state_dict(m1.state_dict())
    torch.manual_seed(7)
    terms = m1.elbo(x[:16])
    torch.manual_seed(7)
    l1 = m1.loss(x[:16])
    torch.manual_seed(7)
    l4 = m4.loss(x[:16])
    torch.testing.assert_close(l4 - l1, 3.0 * terms["kl"].mean())


def test_fit_uses_the_configured_weight_decay() -> None:
    from gdl_ref.train import fit

    model = vae.build("digits", hidden=8, latent_dim=2, weight_decay=0.25)
    (opt,) = model.configure_optimizers(3e-4).values()
    assert opt.param_groups[0]["weight_decay"] == 0.25 and opt.param_groups[0]["lr"] == 3e-4
    x, _ = data.digits("train")
    before = model.loss(x[:256]).item()
    history = fit(model, x, steps=30, seed=0)
    assert history.steps == 30 and model.loss(x[:256]).item() < before


def test_build_rebuilds_and_rejects_bad_arguments() -> None:
    for name in ("digits", data.TOY_NAMES[0]):
        model = vae.build(name, hidden=16)
        again = vae.build(name, **dataclasses.asdict(model.config))
        again.load_state_dict(model.state_dict())  # same architecture
        assert again.config == model.config
    toy = vae.build("moons")
    assert toy.sample(7).shape == (7, 2) and toy.log_prob(data.toy("moons", 3), k=5).shape == (3,)
    with pytest.raises(ValueError, match="digits"):
        vae.build("cifar")
    with pytest.raises(TypeError, match="latent"):
        vae.build("digits", latnet_dim=3)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        toy.loss(torch.zeros(4, 3))


def _ar_model() -> vae.ImageVAE:
    model = vae.build("digits", hidden=8, latent_dim=3, ar_layers=2, ar_channels=8)
    return model.eval()  # dropout off: the logits are a function of (z, x)


def test_autoregressive_decoder_sees_only_the_pixels_before_each_one() -> None:
    model, g = _ar_model(), torch.Generator().manual_seed(3)
    z = torch.randn(2, 3, generator=g)
    x = torch.randint(0, 17, (2, 1, 8, 8), generator=g)
    with torch.no_grad():
        logits = model._logits(z, x)  # (2, 17, 8, 8), every pixel at once
        for i in (0, 9, 30, 63):  # pixel i's logits: the same whatever pixels i, i + 1, ... hold
            later = x.clone().flatten(1)
            later[:, i:] = torch.randint(0, 17, later[:, i:].shape, generator=g)
            again = model._logits(z, later.reshape(x.shape))
            torch.testing.assert_close(again.flatten(2)[:, :, : i + 1], logits.flatten(2)[:, :, : i + 1])
            if i < 63:  # and pixel i + 1 does see pixel i
                assert not torch.allclose(again.flatten(2)[:, :, i + 1:], logits.flatten(2)[:, :, i + 1:])
        # log p(x | z) is the sum of the per-pixel log-softmax at the observed levels: a normalised chain rule
        lp = torch.log_softmax(logits, 1).gather(1, x).sum((1, 2, 3))
        torch.testing.assert_close(model.log_lik(x, z.unsqueeze(0)).squeeze(0), lp)


def test_autoregressive_decoder_samples_follow_its_first_conditional_and_keep_the_contract() -> None:
    model = _ar_model()
    z = torch.randn(1, 3)
    with torch.no_grad():
        probs = torch.softmax(model._logits(z, torch.zeros(1, 1, 8, 8, dtype=torch.long))[0, :, 0, 0], 0)  # (17,)
        draws = model.decode(z.expand(5_000, 3), "sample", torch.Generator().manual_seed(8))
    freq = torch.bincount(draws[:, 0, 0, 0], minlength=17).float() / len(draws)
    assert (freq - probs).abs().max() < 0.03, (freq, probs)
    assert draws.dtype == torch.int64 and 0 <= draws.min() and draws.max() <= 16
    x, _ = data.digits("test")
    model.train()
    loss = model.loss(x[:4])
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.ar.parameters())
    lp = model.log_prob(x[:4], k=10)
    assert lp.shape == (4,) and (lp < 0).all() and model.sample(3).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="categorical"):
        vae.build("digits", ar_layers=1, likelihood="logistic")
