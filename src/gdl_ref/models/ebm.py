"""Energy-based model: an energy network, Langevin sampling, contrastive divergence, a replay buffer.

An energy network E_theta(x) -> R defines the density p_theta(x) = exp(-E_theta(x)) / Z(theta). Z is
intractable, but the gradient of the log-likelihood is not:

    grad_theta E_{x~data}[-log p_theta(x)] = E_{x+~data}[grad_theta E(x+)] - E_{x-~p_theta}[grad_theta E(x-)],

so training pushes energy down on data and up on the model's own samples x-. Those come from Langevin
dynamics, a Markov chain that needs only grad_x E:

    x_{k+1} = x_k - epsilon * clip(grad_x E(x_k)) + sigma * omega_k,   omega_k ~ N(0, I).

With sigma = sqrt(2 epsilon) and no clipping this is the unadjusted Langevin algorithm, whose chain
approaches p_theta as epsilon -> 0 and k -> infinity (Roberts & Tweedie, 1996). On images Du & Mordatch
(2019) decouple sigma from epsilon, clip the gradient and run only ~60 steps, starting 95% of the chains
from a replay buffer of earlier samples (persistent chains) and 5% from uniform noise. The loss

    L = mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2)

is contrastive divergence with an energy-magnitude regulariser that keeps energies near zero.

On digits the images are dequantised to y = (x + u) / 17 in [0, 1), scaled to [-1, 1], and samples are
quantised back to levels 0..16. On the 2-D toys the energy is an MLP and the default sampler is exact
Langevin (sigma = sqrt(2 epsilon), no clipping).

References: LeCun et al., "A Tutorial on Energy-Based Learning" (2006); Hinton, "Training Products of
Experts by Minimizing Contrastive Divergence" (2002); Welling & Teh, "Bayesian Learning via Stochastic
Gradient Langevin Dynamics", ICML 2011; Du & Mordatch, "Implicit Generation and Modeling with
Energy-Based Models", NeurIPS 2019; Grathwohl et al., "Your Classifier is Secretly an Energy Based
Model" (JEM), ICLR 2020; Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import evaluating
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.spaces import Points, SignedImages

__all__ = ["EBMConfig", "EBM", "ImageEBM", "PointEBM", "langevin", "contrastive_divergence", "config_for", "build"]


@dataclass
class EBMConfig(FamilyConfig):
    """Settings of an energy-based model (defaults for digits; ``defaults`` gives the toys')."""

    width: int = 32  # conv channels (digits) or hidden units (toys: 64)
    steps: int = 20  # Langevin steps per training batch (the book: 60; 20 trains 3x the batches per second)
    sample_steps: int = 20  # Langevin steps run by sample() on chains from the buffer
    step_size: float = 10.0  # epsilon in x <- x - epsilon * clip(grad E) + sigma * omega (toys: 0.01)
    noise: float | None = 0.005  # sigma; None means sqrt(2 epsilon), exact Langevin (toys)
    grad_clip: float | None = 0.03  # clamp each component of grad_x E to [-c, c]; None: off (toys)
    bound: float = 1.0  # chains start U[-bound, bound]^d and are clamped there (toys: 3.0)
    buffer_size: int = 8192  # replay buffer of past negatives (Foster ch. 7: 8192)
    reuse: float = 0.95  # share of chains restarted from the buffer; the rest from noise
    alpha: float = 0.01  # energy-magnitude penalty weight (the book: 0.1; toys: 0.1)
    lr: float = 1e-4  # Adam learning rate (the book: 1e-4; toys: 3e-3)
    betas: tuple[float, float] = (0.0, 0.999)  # Adam betas (Du & Mordatch's code)

    RANGES = {"reuse": (0.0, 1.0), "betas": (0.0, 1.0)}

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Toys: exact Langevin, and a larger learning rate, which a 2-D MLP needs to grow energy wells as narrow
        as the modes (sigma = 0.2 on 8gaussians) within a minute."""
        if data == "digits":
            return {}
        return {"width": 64, "step_size": 0.01, "noise": None, "grad_clip": None, "bound": 3.0, "alpha": 0.1,
                "lr": 3e-3}

    @property
    def sigma(self) -> float:
        """The Langevin noise scale: ``noise``, or sqrt(2 epsilon) when it is None."""
        return math.sqrt(2 * self.step_size) if self.noise is None else self.noise


# --8<-- [start:langevin]
def langevin(energy: Callable[[Tensor], Tensor], x: Tensor, steps: int, step_size: float, noise: float,
             grad_clip: float | None = None, bound: float | None = None) -> Tensor:
    """Run ``steps`` Langevin steps from x (B, ...) on the energy ``energy`` (B, ...) -> (B,).

    x_{k+1} = x_k - epsilon * clip(grad_x E(x_k)) + sigma * omega_k, omega_k ~ N(0, I); with
    sigma = sqrt(2 epsilon) and no clipping the chain targets p(x) ~ exp(-E(x)) (Welling & Teh 2011).
    Works under torch.no_grad; the result is detached.
    """
    x = x.detach().clone()
    with torch.enable_grad():
        for _ in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x).sum(), x)  # grad_x E(x), (B, ...)
            if grad_clip is not None:
                grad = grad.clamp(-grad_clip, grad_clip)  # clip(grad E)
            x = x.detach() - step_size * grad + noise * torch.randn_like(x)  # x - eps grad + sigma omega
            if bound is not None:
                x = x.clamp(-bound, bound)  # stay in the data's box
    return x.detach()
# --8<-- [end:langevin]


# --8<-- [start:loss]
def contrastive_divergence(e_pos: Tensor, e_neg: Tensor, alpha: float) -> Tensor:
    """mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2): energies (B,) of data and of samples."""
    cd = e_pos.mean() - e_neg.mean()  # push data down, samples up
    reg = (e_pos**2).mean() + (e_neg**2).mean()  # keep |E| small
    return cd + alpha * reg
# --8<-- [end:loss]


class EBM(nn.Module):
    """Energy E(x) with a replay buffer of Langevin samples, trained by ``fit`` through ``training_step``.

    ``loss(x)`` (``fit``'s validation) is the contrastive-divergence loss of x against fresh Langevin
    samples started from the buffer, without writing them back; ``training_step`` writes them back.
    The buffer is part of the state dict (checkpoints keep the chains), so do not train with
    ``fit(..., ema_decay=...)``: its average of the state would average the chains too. A subclass gives the
    energy network, the shape of one example, and the maps between data and the energy's space.
    """

    def __init__(self, config: EBMConfig, net: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.config = config
        self.shape = shape
        self.net = net  # (B, ...) -> (B, 1)
        self.register_buffer("buffer", self._noise(config.buffer_size))  # (N, ...) past negatives

    def _noise(self, n: int) -> Tensor:
        b = self.config.bound
        device = self.buffer.device if hasattr(self, "buffer") else None
        return (torch.rand(n, *self.shape, device=device) * 2 - 1) * b  # U[-bound, bound]

    def prepare(self, x: Tensor) -> Tensor:
        """Data as the energy sees it."""
        raise NotImplementedError

    def to_data(self, x: Tensor) -> Tensor:
        """A point of the energy's space as a sample of the data."""
        raise NotImplementedError

    def energy(self, x: Tensor) -> Tensor:
        """E(x) (B,) on prepared inputs; the model's unnormalised log density is -E(x)."""
        return self.net(x).squeeze(1)

    # --8<-- [start:buffer]
    def chains(self, n: int) -> tuple[Tensor, Tensor]:
        """Starting points for n chains: buffer indices (n,) and x0 (n, ...), a share 1 - reuse from noise."""
        idx = torch.randint(0, self.config.buffer_size, (n,), device=self.buffer.device)  # (n,)
        x0 = self.buffer[idx].clone()
        fresh = torch.rand(n, device=x0.device) >= self.config.reuse  # restart with prob 1 - reuse
        x0[fresh] = self._noise(int(fresh.sum()))
        return idx, x0

    def negatives(self, n: int, write: bool) -> Tensor:
        """n model samples x- by ``steps`` Langevin steps from the buffer; ``write`` stores them back."""
        c = self.config
        idx, x0 = self.chains(n)
        x = langevin(self.energy, x0, c.steps, c.step_size, c.sigma, c.grad_clip, c.bound)
        if write:
            self.buffer[idx] = x
        return x
    # --8<-- [end:buffer]

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """Adam with the config's lr and betas; ``fit``'s ``lr`` is ignored (set ``lr`` in the config)."""
        return {"energy": torch.optim.Adam(self.net.parameters(), lr=self.config.lr, betas=self.config.betas)}

    # --8<-- [start:step]
    def training_step(self, batch: tuple[Tensor, ...], optimizers: dict[str, torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        """Sample negatives (and store them), then one Adam step on the contrastive-divergence loss."""
        real = self.prepare(batch[0])  # x+ (B, ...)
        fake = self.negatives(real.shape[0], write=True)  # x- (B, ...)
        e_pos, e_neg = self.energy(real), self.energy(fake)  # (B,), (B,)
        loss = contrastive_divergence(e_pos, e_neg, self.config.alpha)
        opt = optimizers["energy"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "e_data": e_pos.mean().item(), "e_sample": e_neg.mean().item()}
    # --8<-- [end:step]

    def loss(self, x: Tensor) -> Tensor:
        """Contrastive-divergence loss of x against Langevin samples from the buffer (not stored)."""
        real = self.prepare(x)
        fake = self.negatives(real.shape[0], write=False)
        return contrastive_divergence(self.energy(real), self.energy(fake), self.config.alpha)

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, from_noise: bool = False) -> Tensor:
        """n samples: ``sample_steps`` Langevin steps from buffer chains (or from uniform noise).

        Digits: int64 levels (n, 1, 8, 8) in 0..16; toys: float (n, 2). The buffer is left unchanged.
        """
        c = self.config
        if from_noise:
            x0 = self._noise(n)
        else:
            idx = torch.randperm(c.buffer_size, device=self.buffer.device)[:n]
            if n > c.buffer_size:
                idx = torch.randint(0, c.buffer_size, (n,), device=self.buffer.device)
            x0 = self.buffer[idx]
        x = langevin(self.energy, x0, c.sample_steps if steps is None else steps, c.step_size, c.sigma,
                     c.grad_clip, c.bound)
        return self.to_data(x)


class ImageEBM(SignedImages, EBM):
    """Strided convs with SiLU (smooth, so grad_x E is smooth) on dequantised digits in [-1, 1)."""

    def __init__(self, config: EBMConfig) -> None:
        w = config.width
        net = nn.Sequential(
            nn.Conv2d(1, w, 3, 1, 1), nn.SiLU(),  # (B, w, 8, 8)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),  # (B, 2w, 4, 4)
            nn.Conv2d(2 * w, 2 * w, 4, 2, 1), nn.SiLU(),  # (B, 2w, 2, 2)
            nn.Flatten(), nn.Linear(8 * w, w), nn.SiLU(), nn.Linear(w, 1),  # (B, 1)
        )
        super().__init__(config, net, gdata.DIGIT_SHAPE)


class PointEBM(Points, EBM):
    """An MLP energy with SiLU on 2-D points."""

    def __init__(self, config: EBMConfig) -> None:
        w = config.width
        net = nn.Sequential(nn.Linear(2, w), nn.SiLU(), nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w), nn.SiLU(),
                            nn.Linear(w, 1))
        super().__init__(config, net, (2,))


config_for = EBMConfig.for_data


def build(data: str, /, **overrides: object) -> EBM:
    """An EBM for "digits" (:class:`ImageEBM`) or a 2-D toy (:class:`PointEBM`), the config's defaults for
    ``data`` replaced by ``overrides``."""
    config = config_for(data, **overrides)
    return ImageEBM(config) if config.image else PointEBM(config)
