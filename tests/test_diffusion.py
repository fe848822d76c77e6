"""Tests of gdl_ref.models.diffusion and gdl_ref.models.unet: forward process, posterior, samplers, bound, contract."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from gdl_ref import data
from gdl_ref.likelihood import Bound
from gdl_ref.models import diffusion
from gdl_ref.models.unet import UNet, time_embedding
from gdl_ref.train import fit


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _tiny(**kw: object) -> diffusion.Diffusion:
    return diffusion.build("digits", **{"timesteps": 20, "channels": 8, **kw}).eval()


@pytest.mark.parametrize("schedule", diffusion.SCHEDULES)
def test_closed_form_forward_matches_iterating_one_step(schedule: str) -> None:
    T = 200
    betas = diffusion.beta_schedule(schedule, T)
    assert betas.shape == (T,) and (betas > 0).all() and (betas < 1).all()
    abar = torch.cumprod(1 - betas, 0)
    # moments of x_t given x_0 by iterating x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps
    m, v = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for t in range(T):
        m, v = (1 - betas[t]).sqrt() * m, (1 - betas[t]) * v + betas[t]
        assert m == pytest.approx(abar[t].sqrt().item(), rel=1e-9)  # mean sqrt(abar_t) x_0
        assert v == pytest.approx(1 - abar[t].item(), rel=1e-9, abs=1e-12)  # variance 1 - abar_t
    # and by simulation, against the model's one-jump q_sample
    model = diffusion.build("moons", timesteps=T, schedule=schedule)
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([[0.8, -0.5]]).expand(100_000, 2)
    x = x0.clone()
    for t in range(60):
        x = (1 - betas[t]).sqrt().float() * x + betas[t].sqrt().float() * torch.randn(x.shape, generator=g)
    t = torch.full((len(x0),), 59)
    jump = model.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    for a in (x, jump):
        torch.testing.assert_close(a.mean(0), abar[59].sqrt().float() * x0[0], atol=0.01, rtol=0)
        torch.testing.assert_close(a.var(0), (1 - abar[59]).float().expand(2), atol=0.01, rtol=0)


def test_cosine_schedule_follows_its_definition() -> None:
    T, s = 100, 0.008
    abar = torch.cumprod(1 - diffusion.beta_schedule("cosine", T), 0)
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    torch.testing.assert_close(abar[:-1], (f / f[0])[1:T], rtol=1e-9, atol=0)  # all but the clipped last
    linear = diffusion.beta_schedule("linear", 1000)
    assert linear[0].item() == pytest.approx(1e-4) and linear[-1].item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="cosine"):
        diffusion.beta_schedule("quadratic", 10)


def test_posterior_matches_bayes_rule() -> None:
    # q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0): a Gaussian prior
    # N(sqrt(abar_{t-1}) x_0, 1 - abar_{t-1}) times a Gaussian likelihood of x_t, N(sqrt(alpha_t) x_{t-1}, beta_t)
    betas = diffusion.beta_schedule("linear", 100)
    abar = torch.cumprod(1 - betas, 0)
    x0, xt = torch.tensor([0.3, -0.9], dtype=torch.float64), torch.tensor([0.5, 0.1], dtype=torch.float64)
    for t in (1, 10, 57, 99):
        alpha, ab_prev = 1 - betas[t], abar[t - 1]
        precision = 1 / (1 - ab_prev) + alpha / betas[t]  # prior precision + likelihood precision
        mean = (ab_prev.sqrt() * x0 / (1 - ab_prev) + alpha.sqrt() * xt / betas[t]) / precision
        got_mean, got_var = diffusion.posterior(x0, xt, abar[t], ab_prev)
        torch.testing.assert_close(got_mean, mean, rtol=1e-9, atol=1e-12)
        assert got_var.item() == pytest.approx(1 / precision.item(), rel=1e-9)


def test_ddpm_mean_is_the_eps_form_of_ho_et_al() -> None:
    # mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps^) / sqrt(alpha_t), Ho et al. eq. (11)
    for output in diffusion.OUTPUTS:
        model = _tiny(output=output, clip=False)
        xt, t = torch.randn(3, 1, 8, 8), torch.full((3,), 12)
        with torch.no_grad():
            x0, eps = model.predict(xt, t)
        mean, _ = diffusion.posterior(x0, xt, model.abar[12], model.abar[11])
        beta = model.betas[12]
        expected = (xt - beta / (1 - model.abar[12]).sqrt() * eps) / (1 - beta).sqrt()
        torch.testing.assert_close(mean, expected, atol=1e-4, rtol=1e-4)


def test_ddim_eta0_is_deterministic_and_eta1_reproduces_ddpm() -> None:
    model = _tiny()
    with torch.no_grad():  # give the zero-initialised output layer some weight so eps^ is not trivial
        for p in model.net.conv_out.parameters():
            p.normal_(0, 0.1)
    xT = torch.randn(4, 1, 8, 8)
    a = model.run_chain(xT, 7, "ddim", eta=0.0, generator=torch.Generator().manual_seed(1))
    b = model.run_chain(xT, 7, "ddim", eta=0.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    T = model.config.timesteps
    ddpm = model.run_chain(xT, T, "ddpm", generator=torch.Generator().manual_seed(3), trajectory=True)
    ddim = model.run_chain(xT, T, "ddim", eta=1.0, generator=torch.Generator().manual_seed(3), trajectory=True)
    assert len(ddpm) == T + 1
    for p, q in zip(ddpm, ddim):  # the same update at every step, given the same noise
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)
    stochastic = model.run_chain(xT, 7, "ddim", eta=1.0, generator=torch.Generator().manual_seed(4))
    assert (stochastic - a).abs().max() > 1e-3


def test_sampler_visits_evenly_spaced_steps() -> None:
    model = _tiny()
    assert model.timesteps_for(None) == list(range(19, -1, -1))
    assert model.timesteps_for(5) == [19, 14, 10, 5, 0]
    with pytest.raises(ValueError, match="steps"):
        model.timesteps_for(21)


def test_discretised_decoder_is_normalised() -> None:
    levels = torch.arange(17).reshape(17, 1).expand(17, 30)
    g = torch.Generator().manual_seed(5)
    mean, std = torch.rand(1, 30, generator=g) * 2.6 - 1.3, torch.rand(1, 30, generator=g) * 0.5 + 0.01
    p = diffusion.discretised_gaussian_log_prob(levels, mean, std, 17).exp().sum(0)
    torch.testing.assert_close(p, torch.ones(30), atol=1e-5, rtol=0)


def test_bound_terms_are_nonnegative_and_vanish_for_a_perfect_denoiser() -> None:
    model = _tiny(timesteps=30)
    x, _ = data.digits("test")
    x = x[:5]
    lp = model.log_prob(x)
    assert lp.shape == (5,) and (lp < 0).all()  # every term is a KL or a -log P >= 0
    # with x0^ = x_0 every KL term is 0 and the decoder puts most of its mass on the right bin
    x0 = model.to_model(x)
    model.predict = lambda xt, t, clip=False: (x0.expand_as(xt), torch.zeros_like(xt))  # type: ignore[method-assign]
    kls = torch.stack([model.nll_terms(x, i) for i in range(1, 30)])
    assert kls.abs().max() < 1e-6
    # the decoder term is then -log of the N(x_0, sigma_1^2) mass on x_0's own bin (end bins open outward)
    h, sigma = 1 / 16, model.sigma2[0].sqrt().double()
    normal = torch.distributions.Normal(0.0, sigma)
    inner = torch.log(normal.cdf(torch.tensor(h)) - normal.cdf(torch.tensor(-h)))
    edge = torch.log(normal.cdf(torch.tensor(h)))
    expected = -torch.where((x == 0) | (x == 16), edge, inner).flatten(1).sum(1)
    torch.testing.assert_close(model.nll_terms(x, 0).double(), expected, rtol=1e-4, atol=1e-4)
    assert model.prior_term(x).max() < 0.05  # q(x_T | x_0) is close to N(0, I)


@pytest.mark.parametrize("output", diffusion.OUTPUTS)
def test_loss_is_the_noise_prediction_error(output: str) -> None:
    model = _tiny(output=output)
    with torch.no_grad():
        for p in model.net.conv_out.parameters():
            p.normal_(0, 0.1)
    x, _ = data.digits("train")
    torch.manual_seed(3)
    loss = model.loss(x[:6])
    torch.manual_seed(3)  # redraw the same t and eps
    t = torch.randint(0, 20, (6,))
    noise = torch.randn(6, 1, 8, 8)
    x0 = x[:6].float() / 8 - 1
    xt = model.abar[t].sqrt().reshape(-1, 1, 1, 1) * x0 + (1 - model.abar[t]).sqrt().reshape(-1, 1, 1, 1) * noise
    _, eps = model.predict(xt, t)
    torch.testing.assert_close(loss, ((eps - noise) ** 2).mean())
    if output == "levels":  # the 17 level logits get different gradients
        loss.backward()
        assert model.net.conv_out.weight.grad.flatten(1).std(0).max() > 1e-6


def test_bound_is_the_same_in_train_mode_and_eval_mode() -> None:
    # dropout is active in train mode; log_prob runs in eval mode itself and restores the mode
    model = _tiny(timesteps=10, dropout=0.5)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a denoiser whose output depends on the dropped units
    x = data.digits("test")[0][:4]
    model.train()
    in_train = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    assert model.training and model.net.conv_out.training  # the mode is restored
    model.eval()
    in_eval = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    assert not model.training
    torch.testing.assert_close(in_train, in_eval, rtol=0, atol=0)
    model.train()
    s1 = model.sample(2, steps=3, generator=torch.Generator().manual_seed(1))
    model.eval()
    assert torch.equal(s1, model.sample(2, steps=3, generator=torch.Generator().manual_seed(1)))


def test_contract_digits() -> None:
    model = _tiny()
    x, _ = data.digits("train")
    loss = model.loss(x[:8])
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for method in diffusion.METHODS:
        s = model.sample(3, steps=4, method=method)
        assert s.shape == (3, 1, 8, 8) and s.dtype == torch.int64 and s.min() >= 0 and s.max() <= 16
    assert diffusion.Diffusion.bound is Bound.ELBO
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model.loss(x[:3].reshape(3, 64))
    with pytest.raises(ValueError, match="ddim"):
        model.sample(2, method="euler")


def test_unet_and_time_embedding_shapes() -> None:
    emb = time_embedding(torch.tensor([0, 1, 500]), 16)
    assert emb.shape == (3, 16) and not torch.allclose(emb[1], emb[2])
    net = UNet(1, 8, (1, 2, 2), out_ch=17)
    assert net(torch.randn(2, 1, 8, 8), torch.tensor([3, 9])).shape == (2, 17, 8, 8)


def test_build_rebuilds_and_rejects_bad_arguments() -> None:
    for name in ("digits", "8gaussians"):
        model = diffusion.build(name, channels=8, timesteps=10)
        again = diffusion.build(name, **dataclasses.asdict(model.config))
        again.load_state_dict(model.state_dict())
        assert again.config == model.config
    toy = diffusion.build("ring", timesteps=10)
    pts = data.toy("ring", 4)
    assert toy.sample(6, method="ddim").shape == (6, 2) and toy.log_prob(pts).shape == (4,)
    with pytest.raises(ValueError, match="digits"):
        diffusion.build("mnist")
    with pytest.raises(TypeError, match="timesteps"):
        diffusion.build("digits", time_steps=10)
    with pytest.raises(ValueError, match="output"):
        diffusion.build("digits", output="x0")


class _GaussianOracle(nn.Module):
    """eps^(x_t, t) of the optimal denoiser for x_0 ~ N(0, I): E[x_0 | x_t] = sqrt(abar_t) x_t, so that
    eps^ = (x_t - sqrt(abar_t) x0^) / sqrt(1 - abar_t) = sqrt(1 - abar_t) x_t."""

    def __init__(self, abar: torch.Tensor) -> None:
        super().__init__()
        self.abar = abar

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.abar[t]).sqrt()[:, None] * xt


def test_analytic_variances_make_the_bound_exact_on_a_gaussian() -> None:
    """For x_0 ~ N(0, I) the true reverse step is Gaussian with variance beta~_t + c_t^2 Var(x_0 | x_t) (= beta_t
    here), which Analytic-DPM estimates from the denoiser (Bao et al., 2022); with the optimal denoiser the bound
    then meets the exact NLL, log(2 pi) + E||x||^2 / 2 in 2-D, while the posterior variances beta~_t leave a gap."""
    torch.manual_seed(0)
    train, test = torch.randn(4096, 2), torch.randn(2000, 2)
    exact = math.log(2 * math.pi) + 0.5 * (test ** 2).sum(1)  # -log N(x; 0, I), (2000,)
    gaps = {}
    for variance in ("posterior", "analytic"):
        model = diffusion.build("moons", variance=variance, calibration_examples=4096)
        model.net = _GaussianOracle(model.abar)
        if variance == "analytic":
            sigma2 = model.calibrate(train, generator=torch.Generator().manual_seed(1))
            assert torch.all(sigma2[1:] >= model.posterior_var[1:]) and torch.all(sigma2[1:] <= model.betas[1:])
            assert torch.allclose(sigma2[1:], model.betas[1:], rtol=0.01)  # the true reverse variance is beta_t
        gap = -model.log_prob(test, generator=torch.Generator().manual_seed(2)) - exact  # bound - NLL, paired
        gaps[variance] = (gap.mean().item(), gap.std().item() / math.sqrt(len(gap)))  # mean and standard error
    (mean, se), (loose, loose_se) = gaps["analytic"], gaps["posterior"]
    assert se < 0.05 and abs(mean) < 3 * se, gaps  # exact within its Monte-Carlo error
    assert loose > 0.5 and loose > mean + 5 * (se + loose_se), gaps  # beta~_t: a valid bound with a gap


def test_analytic_variances_are_estimated_by_fit_and_kept_in_the_checkpoint(tmp_path) -> None:
    from gdl_ref.checkpoint import load_model, save_checkpoint

    torch.manual_seed(0)
    model = diffusion.build("digits", variance="analytic", timesteps=20, channels=8, mults=(1,), calibration_examples=16)
    before = model.analytic_sigma2.clone()
    fit(model, data.load("digits", "train")[:64], steps=2, batch_size=16, progress=False)
    assert not torch.equal(model.analytic_sigma2, before)  # finish_fit calibrated them on the final weights
    save_checkpoint(tmp_path / "ckpt", model)
    assert torch.equal(load_model(tmp_path / "ckpt").analytic_sigma2, model.analytic_sigma2)
    with pytest.raises(ValueError, match="calibrate needs variance='analytic'"):
        diffusion.build("digits", timesteps=20, channels=8, mults=(1,)).calibrate(data.load("digits", "train")[:4])
