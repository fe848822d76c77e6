"""Denoising diffusion probabilistic model (DDPM) with DDIM sampling and a variational bound in bits/dim.

A fixed forward process adds Gaussian noise in T steps, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
so that in closed form

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),     abar_t = prod_{s<=t} (1 - beta_s).

A network eps_theta(x_t, t) learns to predict the noise, with the simple loss E ||eps - eps_theta(x_t, t)||^2,
and defines the reverse process p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I) whose mean is the posterior
mean of q(x_{t-1} | x_t, x_0) at the predicted x_0. Ancestral (DDPM) sampling runs that chain; DDIM runs a
deterministic (eta = 0) chain on a subsequence of the steps. The negative variational bound

    -log p(x_0) <= KL(q(x_T|x_0) || p(x_T)) + sum_{t>1} KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) - log p(x_0|x_1)

with a decoder p(x_0 | x_1) discretised over the 17 grey levels bounds the discrete NLL of a digit image.

References: Sohl-Dickstein et al., "Deep Unsupervised Learning using Nonequilibrium Thermodynamics" (2015);
Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020); Song, Meng & Ermon, "Denoising Diffusion
Implicit Models" (2021); Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (2021, cosine
schedule). Foster, Generative Deep Learning, 2nd ed., chapter 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import (Bound, DensityModule, discretised_gaussian_log_prob, evaluating,
                                normal_log_density)
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.standardize import Standardize
from gdl_ref.models.unet import MLPDenoiser, UNet

__all__ = ["DiffusionConfig", "Diffusion", "ImageDiffusion", "PointDiffusion", "beta_schedule", "posterior",
           "discretised_gaussian_log_prob", "config_for", "build", "SCHEDULES", "METHODS", "OUTPUTS"]

SCHEDULES = ("linear", "cosine")
METHODS = ("ddpm", "ddim")
OUTPUTS = ("eps", "levels")
VARIANCES = ("posterior", "analytic")


@dataclass
class DiffusionConfig(FamilyConfig):
    timesteps: int = 1000  # T, the length of the forward process
    schedule: str = "cosine"  # noise schedule: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal)
    channels: int = 32  # U-Net base width (digits) / MLP width (toys)
    mults: tuple[int, ...] = (1, 2, 2)  # U-Net width multipliers per resolution: 8x8, 4x4, 2x2
    dropout: float = 0.1  # dropout in the U-Net's residual blocks while training (1,000 digits overfit)
    clip: bool = True  # clip the predicted x_0 to the data range [-1, 1] while sampling digits
    output: str = "levels"  # digits: "eps" (the U-Net outputs eps) or "levels" (17 logits a pixel, see predict)
    sample_steps: int | None = None  # default steps of sample(); None = T for DDPM, 50 for DDIM
    variance: str = "posterior"  # the bound's sigma_t^2: "posterior" (beta~_t) or "analytic" (Bao et al., 2022)
    calibration_examples: int = 256  # analytic: train examples (one x_t each per step) that estimate sigma_t^2

    RANGES = {"dropout": (0.0, 1.0)}
    CHOICES = {"schedule": SCHEDULES, "output": OUTPUTS, "variance": VARIANCES}

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Toys: a wider MLP, and no clipping (points have no fixed range)."""
        return {} if data == "digits" else {"channels": 128, "clip": False}

    def recipe(self) -> dict[str, Any]:
        """An EMA of the weights (Ho et al. 2020 use 0.9999 over 800k steps; 0.999 suits a few thousand) is
        evaluated and sampled. No early stopping: the loss at a random t is too noisy to pick a step by."""
        return {"batch_size": 64 if self.data == "digits" else 256, "lr": 1e-3, "ema_decay": 0.999}


# --8<-- [start:schedule]
def beta_schedule(name: str, T: int) -> Tensor:
    """beta_1..beta_T (float64, (T,)).

    linear: beta rises linearly from 1e-4 to 0.02 (Ho et al.; both ends scaled by 1000 / T).
    cosine: abar_t = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi / 2), s = 0.008, and
            beta_t = 1 - abar_t / abar_{t-1}, clipped at 0.999 (Nichol & Dhariwal).
    """
    if name == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    if name == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]  # abar_0 = 1, ..., abar_T ~ 0
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {name!r}; expected one of {SCHEDULES}")
# --8<-- [end:schedule]


# --8<-- [start:posterior]
def posterior(x0: Tensor, xt: Tensor, abar_t: Tensor, abar_prev: Tensor) -> tuple[Tensor, Tensor]:
    """q(x_s | x_t, x_0) for s < t (s = t - 1 in DDPM): mean and variance, Ho et al. eq. (6)-(7).

    With beta = 1 - abar_t / abar_s (one step of the chain s -> t):
    mean = sqrt(abar_s) beta / (1 - abar_t) x_0 + sqrt(1 - beta) (1 - abar_s) / (1 - abar_t) x_t,
    var  = beta (1 - abar_s) / (1 - abar_t).
    """
    beta = 1 - abar_t / abar_prev
    mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * xt) / (1 - abar_t)
    return mean, beta * (1 - abar_prev) / (1 - abar_t)
# --8<-- [end:posterior]


class Diffusion(DensityModule):
    """What DDPM on images and on points shares: the schedule, the eps-prediction loss, the bound, the samplers.

    A subclass supplies ``net`` (eps_theta), ``shape`` (of one example), ``to_model`` / ``from_model`` (data <->
    x_0), ``decoder_log_prob`` (the t = 1 term) and ``clip_x0`` (whether sampling clips x_0 to [-1, 1]).
    """

    bound = Bound.ELBO
    net: nn.Module
    shape: tuple[int, ...]
    clip_x0: bool = False

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        betas = beta_schedule(config.schedule, config.timesteps)  # (T,), index i is step t = i + 1
        abar = torch.cumprod(1 - betas, 0)  # abar_t
        abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])  # abar_{t-1}, abar_0 = 1
        var = betas * (1 - abar_prev) / (1 - abar)  # posterior variance beta~_t (0 at t = 1)
        for name, v in {"betas": betas, "abar": abar, "abar_prev": abar_prev, "posterior_var": var,
                        "sigma2": torch.cat([var[1:2], var[1:]])}.items():  # sigma_1^2 := beta~_2
            self.register_buffer(name, v.float(), persistent=False)
        if config.variance == "analytic":  # estimated after training (calibrate), saved with the weights
            self.register_buffer("analytic_sigma2", self.sigma2.clone())

    # --8<-- [start:analytic]
    @evaluating
    @torch.no_grad()
    def calibrate(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Analytic-DPM reverse variances from the trained network (Bao et al., 2022, Theorem 1), (T,).

        For a reverse step with the mean mu_theta = mu~(x0^, x_t), the variance that maximises the bound is

            sigma_t*^2 = beta~_t + c_t^2 E ||x_0 - x0^(x_t)||^2 / d,     c_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t),

        c_t being x_0's coefficient in the posterior mean. The expectation is estimated on ``data`` (train
        examples, one x_t each per step), and t > 1 is clipped to [beta~_t, beta_t] as in the paper. Any
        sigma_t^2 gives a valid bound, so estimating it on the train split keeps the test bound valid.
        """
        if self.config.variance != "analytic":
            raise ValueError(f"calibrate needs variance='analytic', the config has {self.config.variance!r}")
        x = data[: self.config.calibration_examples].to(self.abar.device)
        x0 = self.to_model(x)  # (N, ...)
        d = x0[0].numel()
        sigma2 = torch.empty_like(self.analytic_sigma2)
        for i in range(self.config.timesteps):
            t = torch.full((x0.shape[0],), i, dtype=torch.long, device=x0.device)
            xt = self.q_sample(x0, t, torch.randn(x0.shape, generator=generator).to(x0))
            mse = ((x0 - self.predict(xt, t)[0]) ** 2).sum() / (x0.shape[0] * d)  # E ||x_0 - x0^||^2 / d
            c = self.abar_prev[i].sqrt() * self.betas[i] / (1 - self.abar[i])
            value = self.posterior_var[i] + c ** 2 * mse
            sigma2[i] = value if i == 0 else value.clamp(self.posterior_var[i], self.betas[i])
        self.analytic_sigma2.copy_(sigma2.clamp(min=1e-8))
        return self.analytic_sigma2

    def finish_fit(self, data: Tensor | tuple[Tensor, ...]) -> None:
        """``fit``'s last step, on the final weights: calibrate the analytic variances on the train data."""
        if self.config.variance == "analytic":
            self.calibrate(data[0] if isinstance(data, tuple) else data, generator=torch.Generator().manual_seed(0))
    # --8<-- [end:analytic]

    # ---- data <-> the model's space -------------------------------------------------------------------
    def to_model(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def from_model(self, x0: Tensor) -> Tensor:
        raise NotImplementedError

    def decoder_log_prob(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """log p(x_0 | x_1) per coordinate, given the reverse step's mean and variance."""
        raise NotImplementedError

    def _at(self, v: Tensor, t: Tensor, x: Tensor) -> Tensor:
        """v[t] shaped to broadcast against x: (B,) -> (B, 1, ...)."""
        return v[t].reshape(-1, *([1] * (x.dim() - 1)))

    # --8<-- [start:forward]
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t | x_0) in one jump: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        ab = self._at(self.abar, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, x: Tensor) -> Tensor:
        """The simple loss E_{t, eps} ||eps - eps_theta(x_t, t)||^2 (mean over pixels; not in nats)."""
        x0 = self.to_model(x)  # (B, ...)
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device)  # t ~ U{1..T}
        noise = torch.randn_like(x0)  # eps ~ N(0, I)
        _, eps = self.predict(self.q_sample(x0, t, noise), t)  # eps_theta(x_t, t)
        return ((noise - eps) ** 2).mean()
    # --8<-- [end:forward]

    def predict(self, xt: Tensor, t: Tensor, clip: bool = False) -> tuple[Tensor, Tensor]:
        """The network's x_0 and eps at (x_t, t): x0^ = (x_t - sqrt(1 - abar_t) eps^) / sqrt(abar_t).

        With clip, x0^ is clipped to [-1, 1] and eps^ re-derived from it, so both stay consistent with x_t.
        """
        ab = self._at(self.abar, t, xt)
        eps = self.net(xt, t)
        x0 = (xt - (1 - ab).sqrt() * eps) / ab.sqrt()
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (xt - ab.sqrt() * x0) / (1 - ab).sqrt()
        return x0, eps

    # --8<-- [start:bound]
    def nll_terms(self, x: Tensor, i: int, generator: torch.Generator | None = None) -> Tensor:
        """Term of the negative bound at step t = i + 1, nats per example (B,), one sample of x_t.

        t = 1: -log p(x_0 | x_1) (the decoder); t > 1: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)).
        """
        x0 = self.to_model(x)
        t = torch.full((x0.shape[0],), i, dtype=torch.long, device=x0.device)
        xt = self.q_sample(x0, t, torch.randn(x0.shape, generator=generator).to(x0))
        x0_hat, _ = self.predict(xt, t)
        ab_t, ab_prev = self._at(self.abar, t, x0), self._at(self.abar_prev, t, x0)
        mean_model, _ = posterior(x0_hat, xt, ab_t, ab_prev)  # mu_theta(x_t, t)
        analytic = self.config.variance == "analytic"
        var = self._at(self.analytic_sigma2 if analytic else self.sigma2, t, x0)  # sigma_t^2
        if i == 0:  # decoder
            return -self.decoder_log_prob(x, mean_model, var).flatten(1).sum(1)
        mean_true, var_true = posterior(x0, xt, ab_t, ab_prev)  # mu~(x_t, x_0), beta~_t
        kl = (mean_true - mean_model) ** 2 / (2 * var)  # KL of equal-variance Gaussians: sigma_t^2 = beta~_t
        if analytic:  # KL(N(mu~, beta~) || N(mu_theta, sigma^2)) = that + (beta~/sigma^2 - 1 + log(sigma^2/beta~)) / 2
            kl = kl + 0.5 * (var_true / var - 1 + torch.log(var / var_true))
        return kl.flatten(1).sum(1)

    def prior_term(self, x: Tensor) -> Tensor:
        """KL(q(x_T | x_0) || N(0, I)), (B,): small when abar_T ~ 0."""
        x0 = self.to_model(x)
        ab = self.abar[-1]
        kl = 0.5 * (ab * x0 ** 2 + (1 - ab) - 1 - torch.log(1 - ab))
        return kl.flatten(1).sum(1)

    @evaluating
    @torch.no_grad()
    def log_prob(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Variational lower bound on log p(x) in nats, (B,): -(L_T + sum_{t>1} L_{t-1} + L_0), all T terms."""
        total = self.prior_term(x)
        for i in range(self.config.timesteps):
            total = total + self.nll_terms(x, i, generator)
        return -total
    # --8<-- [end:bound]

    # --8<-- [start:sampling]
    def timesteps_for(self, steps: int | None) -> list[int]:
        """Indices of the steps a sampler visits, high noise first: all T, or `steps` of them evenly spaced."""
        T = self.config.timesteps
        steps = T if steps is None else steps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T}, got {steps}")
        return torch.linspace(T - 1, 0, steps).round().long().unique_consecutive().tolist()

    def ddpm_step(self, xt: Tensor, i: int, i_prev: int | None, noise: Tensor | None) -> Tensor:
        """Ancestral step x_t -> x_s ~ p(x_s | x_t) = q(x_s | x_t, x0^), s = i_prev (None: the data)."""
        t = torch.full((xt.shape[0],), i, dtype=torch.long, device=xt.device)
        x0, _ = self.predict(xt, t, clip=self.clip_x0)
        if i_prev is None:
            return x0  # the mean of p(x_0 | x_1): the decoder's most likely bin after rounding
        mean, var = posterior(x0, xt, self.abar[i], self.abar[i_prev])
        return mean + var.sqrt() * noise

    def ddim_step(self, xt: Tensor, i: int, i_prev: int | None, eta: float, noise: Tensor | None) -> Tensor:
        """x_s = sqrt(abar_s) x0^ + sqrt(1 - abar_s - sigma^2) eps^ + sigma z (Song et al., eq. (12)).

        sigma = eta sqrt((1 - abar_s)/(1 - abar_t)) sqrt(1 - abar_t/abar_s); eta = 0 is deterministic.
        """
        t = torch.full((xt.shape[0],), i, dtype=torch.long, device=xt.device)
        x0, eps = self.predict(xt, t, clip=self.clip_x0)
        if i_prev is None:
            return x0
        ab_t, ab_s = self.abar[i], self.abar[i_prev]
        sigma = eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt()
        x = ab_s.sqrt() * x0 + (1 - ab_s - sigma ** 2).sqrt() * eps
        return x + sigma * noise if eta > 0 else x

    @evaluating
    @torch.no_grad()
    def run_chain(self, x: Tensor, steps: int | None = None, method: str = "ddpm", eta: float = 0.0,
                  generator: torch.Generator | None = None, trajectory: bool = False) -> Tensor | list[Tensor]:
        """Denoise x = x_T through `steps` steps; returns x_0 in the model's space (or every x_t visited)."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        idx = self.timesteps_for(steps)
        path = [x]
        for i, i_prev in zip(idx, [*idx[1:], None]):
            noisy = i_prev is not None and (method == "ddpm" or eta > 0)
            z = torch.randn(x.shape, generator=generator).to(x) if noisy else None
            x = (self.ddpm_step(x, i, i_prev, z) if method == "ddpm"
                 else self.ddim_step(x, i, i_prev, eta, z))
            path.append(x)
        return path if trajectory else x

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, method: str = "ddpm", eta: float = 0.0,
               generator: torch.Generator | None = None) -> Tensor:
        """n samples: int64 levels (n, 1, 8, 8) on digits, floats (n, 2) on toys.

        method="ddpm": ancestral sampling (with steps < T, on the respaced chain); "ddim": DDIM with eta.
        """
        if steps is None:
            T = self.config.timesteps
            steps = self.config.sample_steps or (T if method == "ddpm" else min(50, T))
        x = torch.randn((n, *self.shape), generator=generator).to(self.abar.device)  # x_T ~ N(0, I)
        return self.from_model(self.run_chain(x, steps, method, eta, generator))
    # --8<-- [end:sampling]


class ImageDiffusion(Diffusion):
    """DDPM on digits: a U-Net denoiser, x_0 the levels' bin centres in [-1, 1], a decoder discretised over the
    17 levels (so the bound is on the discrete NLL), and optionally a denoiser that outputs 17 logits a pixel."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__(config)
        self.shape = gdata.DIGIT_SHAPE
        self.clip_x0 = config.clip
        out = gdata.DIGIT_LEVELS if config.output == "levels" else 1
        self.net = UNet(1, config.channels, config.mults, out, config.dropout)

    def to_model(self, x: Tensor) -> Tensor:
        """Digits' levels 0..16 -> x_0 in [-1, 1] (bin centres)."""
        gdata.check_digits(x)
        return gdata.levels_to_signed(x)

    def from_model(self, x0: Tensor) -> Tensor:
        """x_0 in [-1, 1] -> the nearest level, int64 0..16."""
        return gdata.signed_to_levels(x0)

    def decoder_log_prob(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """log P(x | x_1): N(mean, var) integrated over each level's bin (``discretised_gaussian_log_prob``)."""
        return discretised_gaussian_log_prob(x, mean, var.sqrt(), gdata.DIGIT_LEVELS)

    # --8<-- [start:predict]
    def predict(self, xt: Tensor, t: Tensor, clip: bool = False) -> tuple[Tensor, Tensor]:
        """The network's x_0 and eps at (x_t, t): x0^ = (x_t - sqrt(1 - abar_t) eps^) / sqrt(abar_t).

        output="levels": x0^ = E[x_0 | x_t] under a per-pixel posterior over the 17 levels, which lies in [-1, 1]
        by construction (``clip`` has nothing to do). output="eps": as in :meth:`Diffusion.predict`.
        """
        if self.config.output == "eps":
            return super().predict(xt, t, clip)
        ab = self._at(self.abar, t, xt)
        c = torch.linspace(-1, 1, gdata.DIGIT_LEVELS, device=xt.device).reshape(1, -1, 1, 1)  # (1, 17, 1, 1)
        log_lik = -(xt - ab.sqrt() * c) ** 2 / (2 * (1 - ab))  # log q(x_t | x_0 = c_k), (B, 17, 8, 8)
        probs = torch.softmax(self.net(xt, t) + log_lik, dim=1)  # learned context + exact likelihood
        x0 = (probs * c).sum(1, keepdim=True)  # (B, 1, 8, 8)
        return x0, (xt - ab.sqrt() * x0) / (1 - ab).sqrt()
    # --8<-- [end:predict]


class PointDiffusion(Diffusion):
    """DDPM on 2-D points: an MLP denoiser, x_0 the points standardised by the training data (x_0 = (x - m) / s,
    so the noise schedule meets unit-scale data wherever the points lie), a Gaussian decoder density."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__(config)
        self.shape = (2,)
        self.net = MLPDenoiser(2, config.channels)
        self.standardize = Standardize(2)

    def to_model(self, x: Tensor) -> Tensor:
        """Points (B, 2) -> x_0 = (x - m) / s."""
        gdata.check_points(x)
        return self.standardize(x)[0]

    def from_model(self, x0: Tensor) -> Tensor:
        """x = m + s x_0."""
        return self.standardize.inverse(x0)

    def decoder_log_prob(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """log N(x_0; mean, var), a density of the standardised point."""
        return normal_log_density(self.to_model(x), mean, var.log())

    @evaluating
    @torch.no_grad()
    def log_prob(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The bound on log p(x_0) plus log|dx_0/dx| = -sum_d log s_d: a bound on the density of x, (B,)."""
        return super().log_prob(x, generator) - self.standardize.std.log().sum()


config_for = DiffusionConfig.for_data


def build(data: str = "digits", /, **overrides: object) -> Diffusion:
    """A diffusion model for "digits" (:class:`ImageDiffusion`) or a 2-D toy (:class:`PointDiffusion`), the
    config's defaults for ``data`` replaced by ``overrides``."""
    config = config_for(data, **overrides)
    return ImageDiffusion(config) if config.image else PointDiffusion(config)
