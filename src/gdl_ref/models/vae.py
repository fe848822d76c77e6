"""Variational autoencoder (VAE) with an importance-weighted bound (IWAE).

A latent-variable model p(x) = int p(x | z) p(z) dz with p(z) = N(0, I) and a decoder p(x | z), trained by
maximising the evidence lower bound (ELBO) with an encoder q(z | x) = N(mu(x), diag sigma^2(x)):

    log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z))            (ELBO: reconstruction - KL)

Sampling z = mu + sigma * eps with eps ~ N(0, I) (the reparameterisation trick) makes the bound differentiable in
the encoder's parameters. With k samples the importance-weighted bound

    log p(x) >= E[log (1/k) sum_i p(x, z_i) / q(z_i | x)]            (IWAE-k)

is tighter, grows with k and tends to log p(x); the test NLL reported by :meth:`VAE.log_prob` is this bound.
On digits the decoder is a categorical distribution over the 17 grey levels of each pixel (or, as an option, a
discretised logistic), so log_prob is a bound on the discrete log-likelihood in nats per image.

References: Kingma & Welling, "Auto-Encoding Variational Bayes" (2014); Rezende et al., "Stochastic
Backpropagation and Approximate Inference in Deep Generative Models" (2014); Burda et al., "Importance Weighted
Autoencoders" (2016); Higgins et al., "beta-VAE" (2017); Salimans et al., "PixelCNN++" (2017, discretised
logistic). Foster, Generative Deep Learning, 2nd ed., chapter 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.models.registry import make_config

LIKELIHOODS = ("categorical", "logistic")


# How fit trains this family (gdl_ref.models.registry.recipe; `gdl-ref train` and `gdl-ref bench` use it):
# an EMA of the weights is what gets evaluated and sampled, and early stopping on the val split keeps the best
# (1,000 digits overfit after a few thousand steps). Weight decay is the config's (configure_optimizers).
RECIPES: dict[str, dict[str, object]] = {
    "digits": {"batch_size": 64, "lr": 1e-3, "ema_decay": 0.998, "eval_every": 250, "patience": 8},
    "toys": {"batch_size": 256, "lr": 1e-3, "ema_decay": 0.998},
}


@dataclass
class VAEConfig:
    data: str = "digits"  # "digits" or a 2-D toy name (gdl_ref.data.TOY_NAMES)
    latent_dim: int = 16  # size of z (digits); 2 makes a latent map possible; toys use 2 by default
    hidden: int = 16  # conv channels (digits) / MLP width (toys)
    likelihood: str = "categorical"  # digits decoder: "categorical" (17 logits a pixel) or "logistic"
    beta: float = 1.0  # weight of the KL term in the loss (beta-VAE); 1.0 is the ELBO
    weight_decay: float = 0.5  # AdamW's decoupled weight decay (see configure_optimizers): 1,000 digits overfit fast
    iwae_k: int = 1000  # importance samples for log_prob (the reported test-NLL bound)


# --8<-- [start:kl]
def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | float = 0.0,
                logvar_p: Tensor | float = 0.0) -> Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) of diagonal Gaussians, summed over the last dimension."""
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu_q.dtype)
    # KL = 1/2 [log var_p - log var_q + (var_q + (mu_q - mu_p)^2) / var_p - 1]
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)
    return kl.sum(-1)
# --8<-- [end:kl]


def log_normal(z: Tensor, mu: Tensor | float = 0.0, logvar: Tensor | float = 0.0) -> Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype)
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)


# --8<-- [start:reparameterise]
def reparameterise(mu: Tensor, logvar: Tensor, k: int | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q(z|x) that is differentiable in (mu, sigma).

    With k, draws k samples a row: shape (k, B, D) instead of (B, D).
    """
    shape = mu.shape if k is None else (k, *mu.shape)
    device = mu.device if generator is None else generator.device
    eps = torch.randn(shape, generator=generator, device=device, dtype=mu.dtype).to(mu.device)  # eps ~ N(0, I)
    return mu + (0.5 * logvar).exp() * eps  # z = mu + sigma * eps
# --8<-- [end:reparameterise]


# --8<-- [start:iwae]
def log_weights(log_lik: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, k: int,
                generator: torch.Generator | None = None) -> Tensor:
    """log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) for k samples z_i ~ q: shape (k, B)."""
    z = reparameterise(mu, logvar, k, generator)  # (k, B, D)
    return log_lik(z) + log_normal(z) - log_normal(z, mu, logvar)  # (k, B)


def iwae_bound(log_lik: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, k: int,
               generator: torch.Generator | None = None) -> Tensor:
    """IWAE-k bound log (1/k) sum_i w_i <= log p(x), one value a row (B,); k = 1 is a one-sample ELBO."""
    log_w = log_weights(log_lik, mu, logvar, k, generator)  # (k, B)
    return torch.logsumexp(log_w, 0) - math.log(k)  # log (1/k) sum_i w_i
# --8<-- [end:iwae]


# --8<-- [start:logistic]
def discretised_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """log P(x) of integer levels 0..levels-1 under a logistic binned on [-1, 1] (edges open at the ends).

    P(x) = sigmoid((c + h - mean) / s) - sigmoid((c - h - mean) / s), c the level's centre, h half a bin.
    """
    c = 2 * x.to(mean.dtype) / (levels - 1) - 1  # level centre in [-1, 1]
    h = 1.0 / (levels - 1)  # half a bin
    inv_s = torch.exp(-log_scale)
    cdf_hi = torch.sigmoid((c + h - mean) * inv_s)
    cdf_lo = torch.sigmoid((c - h - mean) * inv_s)
    log_hi = F.logsigmoid((c + h - mean) * inv_s)  # log CDF(upper edge): the first bin reaches -inf
    log_lo = F.logsigmoid(-(c - h - mean) * inv_s)  # log (1 - CDF(lower edge)): the last bin reaches +inf
    mid = torch.log((cdf_hi - cdf_lo).clamp_min(1e-12))
    return torch.where(x == 0, log_hi, torch.where(x == levels - 1, log_lo, mid))
# --8<-- [end:logistic]


def _check_digits(x: Tensor) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != gdata.DIGIT_SHAPE:
        raise ValueError(f"expected x of shape (B, 1, 8, 8), got {tuple(x.shape)}")


class VAE(nn.Module):
    """Gaussian-latent VAE: conv encoder/decoder on digits, MLPs on 2-D toys."""

    nll_bound = "iwae"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config.hidden, config.latent_dim
        self.image = config.data == "digits"
        if self.image:
            if config.likelihood not in LIKELIHOODS:
                raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {config.likelihood!r}")
            out = gdata.DIGIT_LEVELS if config.likelihood == "categorical" else 2
            self.encoder = nn.Sequential(  # (B, 1, 8, 8) -> (B, 2D)
                nn.Conv2d(1, c, 3, padding=1), nn.SiLU(),  # (B, c, 8, 8)
                nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.SiLU(),  # (B, 2c, 4, 4)
                nn.Flatten(), nn.Linear(2 * c * 16, 4 * c), nn.SiLU(),  # (B, 4c)
                nn.Linear(4 * c, 2 * d),  # (B, 2D): mu and log sigma^2
            )
            self.decoder = nn.Sequential(  # (B, D) -> (B, out, 8, 8)
                nn.Linear(d, 4 * c), nn.SiLU(),
                nn.Linear(4 * c, 2 * c * 16), nn.SiLU(), nn.Unflatten(1, (2 * c, 4, 4)),  # (B, 2c, 4, 4)
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.SiLU(),  # (B, c, 8, 8)
                nn.Conv2d(c, c, 3, padding=1), nn.SiLU(),
                nn.Conv2d(c, out, 1),  # (B, out, 8, 8): 17 logits, or (mean, log scale)
            )
        else:
            self.encoder = nn.Sequential(nn.Linear(2, c), nn.SiLU(), nn.Linear(c, c), nn.SiLU(),
                                         nn.Linear(c, 2 * d))
            self.decoder = nn.Sequential(nn.Linear(d, c), nn.SiLU(), nn.Linear(c, c), nn.SiLU(),
                                         nn.Linear(c, 2))
            self.log_sigma = nn.Parameter(torch.full((2,), -2.0))  # decoder noise of p(x | z) = N(f(z), sigma^2)

    def _check(self, x: Tensor) -> None:
        if self.image:
            _check_digits(x)
        elif x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"expected x of shape (B, 2), got {tuple(x.shape)}")

    def _inputs(self, x: Tensor) -> Tensor:
        """Encoder input: digits as floats in [-1, 1]."""
        return 2 * x.float() / (gdata.DIGIT_LEVELS - 1) - 1 if self.image else x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x) = N(mu, diag exp(logvar)): returns mu, logvar, each (B, D)."""
        self._check(x)
        mu, logvar = self.encoder(self._inputs(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    # --8<-- [start:likelihood]
    def log_lik(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x | z) in nats: x (B, ...), z (..., B, D) -> (..., B)."""
        lead = z.shape[:-1]  # (..., B)
        out = self.decoder(z.reshape(-1, z.shape[-1]))  # (N, out, 8, 8) or (N, 2)
        xs = x.expand(*lead[:-1], *x.shape).reshape(-1, *x.shape[1:])  # x repeated for each sample
        if not self.image:  # Gaussian decoder: log N(x; f(z), sigma^2)
            lp = log_normal(xs, out, 2 * self.log_sigma)
        elif self.config.likelihood == "categorical":  # log p(x|z) = sum_pixels log softmax(logits)[x]
            lp = -F.cross_entropy(out, xs[:, 0], reduction="none").flatten(1).sum(1)
        else:  # discretised logistic over the 17 levels
            mean, log_scale = out[:, :1].tanh(), out[:, 1:].clamp(-7.0, 3.0)
            lp = discretised_logistic_log_prob(xs, mean, log_scale, gdata.DIGIT_LEVELS).flatten(1).sum(1)
        return lp.reshape(lead)
    # --8<-- [end:likelihood]

    # --8<-- [start:elbo]
    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One-sample ELBO split in its two terms, each (B,): elbo = recon - kl."""
        mu, logvar = self.encode(x)  # (B, D) each
        z = reparameterise(mu, logvar, generator=generator)  # (B, D)
        recon = self.log_lik(x, z)  # E_q[log p(x | z)], one-sample estimate
        kl = gaussian_kl(mu, logvar)  # KL(q(z | x) || N(0, I)), in closed form
        return {"recon": recon, "kl": kl, "elbo": recon - kl}

    def loss(self, x: Tensor) -> Tensor:
        """Negative (beta-)ELBO, nats per example: -(recon - beta * KL)."""
        terms = self.elbo(x)
        return -(terms["recon"] - self.config.beta * terms["kl"]).mean()
    # --8<-- [end:elbo]

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """AdamW with the config's weight decay (it replaces the weight_decay argument of fit)."""
        return {"model": torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=self.config.weight_decay)}

    def iwae(self, x: Tensor, k: int, generator: torch.Generator | None = None,
             chunk: int = 250) -> Tensor:
        """IWAE-k bound on log p(x), (B,), drawing the k samples in chunks to bound memory."""
        mu, logvar = self.encode(x)
        parts = [log_weights(lambda z: self.log_lik(x, z), mu, logvar, min(chunk, k - i), generator)
                 for i in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(parts), 0) - math.log(k)  # (B,)

    @torch.no_grad()
    def log_prob(self, x: Tensor, k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """IWAE-k lower bound on log p(x) in nats (k = config.iwae_k by default), (B,)."""
        return self.iwae(x, k or self.config.iwae_k, generator)

    @torch.no_grad()
    def decode(self, z: Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x | z) ("sample") or its most likely value ("mode"): digits int64 (N, 1, 8, 8), toys (N, 2)."""
        if mode not in ("sample", "mode"):
            raise ValueError(f"mode must be 'sample' or 'mode', got {mode!r}")
        out = self.decoder(z)
        if not self.image:
            noise = torch.randn(out.shape, generator=generator).to(out) if mode == "sample" else 0.0
            return out + self.log_sigma.exp() * noise
        if self.config.likelihood == "categorical":
            logits = out.permute(0, 2, 3, 1)  # (N, 8, 8, 17)
            if mode == "mode":
                return logits.argmax(-1).unsqueeze(1)
            u = torch.rand(logits.shape, generator=generator).to(logits).clamp_min(1e-20)
            return (logits - (-u.log()).log()).argmax(-1).unsqueeze(1)  # Gumbel-max sample, (N, 1, 8, 8)
        mean, log_scale = out[:, :1].tanh(), out[:, 1:].clamp(-7.0, 3.0)
        if mode == "sample":  # inverse-CDF sample of the logistic
            u = torch.rand(mean.shape, generator=generator).to(mean).clamp(1e-5, 1 - 1e-5)
            mean = mean + log_scale.exp() * (u.log() - (1 - u).log())
        levels = gdata.DIGIT_LEVELS - 1
        return ((mean + 1) * levels / 2).round().clamp(0, levels).long()

    @torch.no_grad()
    def sample(self, n: int, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        """n draws of x: z ~ N(0, I), x ~ p(x | z)."""
        p = next(self.parameters())
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(p)
        return self.decode(z, mode, generator)

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, mode: str = "mode") -> Tensor:
        """Decodes the straight line between the posterior means of two inputs (steps, ...)."""
        mu, _ = self.encode(torch.stack([x_a, x_b]))
        w = torch.linspace(0, 1, steps).unsqueeze(1)
        return self.decode((1 - w) * mu[0] + w * mu[1], mode)


def build(data: str = "digits", /, **overrides: object) -> VAE:
    """A VAE for "digits" or a 2-D toy, with the config's defaults replaced by ``overrides``."""
    defaults: dict[str, object] = {} if data == "digits" else {"latent_dim": 2, "hidden": 128, "weight_decay": 0.0}
    return VAE(make_config(VAEConfig, data, {**defaults, **overrides}))
