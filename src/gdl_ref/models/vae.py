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

With ``ar_layers`` > 0 the digits decoder is autoregressive over the 64 pixels (PixelVAE, Gulrajani et al., 2017):

    p(x | z) = prod_i Cat(x_i | softmax(f_i(z) + g_i(x_<i, z))),

f the factorised decoder's logits and g a small gated PixelCNN (``gdl_ref.models.autoregressive``) over the
pixels before i, fed the decoder's features of z. Each conditional is a normalised categorical and g sees only
x_<i, so p(x | z) is a normalised distribution and both bounds stay valid. The latent then carries the digit's
overall shape and the PixelCNN the correlations between neighbouring pixels that a factorised decoder averages out.

References: Kingma & Welling, "Auto-Encoding Variational Bayes" (2014); Rezende et al., "Stochastic
Backpropagation and Approximate Inference in Deep Generative Models" (2014); Burda et al., "Importance Weighted
Autoencoders" (2016); Higgins et al., "beta-VAE" (2017); Salimans et al., "PixelCNN++" (2017, discretised
logistic). Foster, Generative Deep Learning, 2nd ed., chapter 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound, DensityModule, discretised_logistic_log_prob, evaluating, log_normal
from gdl_ref.models.autoregressive import GatedBlock
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.standardize import Standardize

__all__ = ["VAEConfig", "VAE", "ImageVAE", "PointVAE", "gaussian_kl", "log_normal", "reparameterise", "log_weights",
           "iwae_bound", "discretised_logistic_log_prob", "config_for", "build"]

LIKELIHOODS = ("categorical", "logistic")


@dataclass
class VAEConfig(FamilyConfig):
    latent_dim: int = 16  # size of z (digits); 2 makes a latent map possible; toys use 2 by default
    hidden: int = 16  # conv channels (digits) / MLP width (toys)
    likelihood: str = "categorical"  # digits decoder: "categorical" (17 logits a pixel) or "logistic"
    beta: float = 1.0  # weight of the KL term in the loss (beta-VAE); 1.0 is the ELBO
    weight_decay: float = 0.5  # AdamW's decoupled weight decay (see configure_optimizers): 1,000 digits overfit fast
    iwae_k: int = 1000  # importance samples for log_prob (the reported test-NLL bound)
    ar_layers: int = 0  # digits: gated PixelCNN blocks of an autoregressive decoder (0: a factorised decoder)
    ar_channels: int = 32  # feature maps of each of those blocks
    ar_dropout: float = 0.5  # dropout on their gated features

    CHOICES = {"likelihood": LIKELIHOODS}
    RANGES = {"ar_layers": (0, 32), "ar_dropout": (0.0, 1.0)}

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Toys: a 2-D latent, wider MLPs, no weight decay (100,000 points do not overfit)."""
        return {} if data == "digits" else {"latent_dim": 2, "hidden": 128, "weight_decay": 0.0}

    def recipe(self) -> dict[str, Any]:
        """An EMA of the weights is evaluated and sampled; on digits, early stopping on the val split keeps the
        best (1,000 digits overfit after a few thousand steps). Weight decay is the config's (configure_optimizers)."""
        if self.data == "digits":
            return {"batch_size": 64, "lr": 1e-3, "ema_decay": 0.998, "eval_every": 250, "patience": 8}
        return {"batch_size": 256, "lr": 1e-3, "ema_decay": 0.998}


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


class VAE(DensityModule):
    """What every Gaussian-latent VAE shares: the ELBO, the IWAE bound, sampling through the prior.

    A subclass supplies ``encoder`` (inputs -> (B, 2D)), ``decoder``, ``inputs(x)`` (data as the encoder
    sees it, checked), ``log_lik(x, z)`` and ``decode(z, mode)``.
    """

    bound = Bound.IWAE
    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config

    def inputs(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def log_lik(self, x: Tensor, z: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, z: Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x) = N(mu, diag exp(logvar)): returns mu, logvar, each (B, D)."""
        mu, logvar = self.encoder(self.inputs(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    @staticmethod
    def _repeated(x: Tensor, z: Tensor) -> Tensor:
        """x (B, ...) repeated for each sample of z (..., B, D), flattened to (N, ...)."""
        return x.expand(*z.shape[:-2], *x.shape).reshape(-1, *x.shape[1:])

    def _decoded(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """The decoder's output for z (..., B, D) flattened to (N, ...), and x repeated to match (N, ...)."""
        return self.decoder(z.reshape(-1, z.shape[-1])), self._repeated(x, z)

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

    def log_likelihood(self, x: Tensor) -> Tensor:
        """The one-sample ELBO, (B,): a lower bound on log p(x) (``log_prob`` gives the tighter IWAE-k)."""
        return self.elbo(x)["elbo"]

    @evaluating
    @torch.no_grad()
    def log_prob(self, x: Tensor, k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """IWAE-k lower bound on log p(x) in nats (k = config.iwae_k by default), (B,)."""
        return self.iwae(x, k or self.config.iwae_k, generator)

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        """n draws of x: z ~ N(0, I), x ~ p(x | z)."""
        if mode not in ("sample", "mode"):
            raise ValueError(f"mode must be 'sample' or 'mode', got {mode!r}")
        p = next(self.parameters())
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(p)
        return self.decode(z, mode, generator)

    @evaluating
    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, mode: str = "mode") -> Tensor:
        """Decodes the straight line between the posterior means of two inputs (steps, ...)."""
        mu, _ = self.encode(torch.stack([x_a, x_b]))
        w = torch.linspace(0, 1, steps, device=mu.device).unsqueeze(1)
        return self.decode((1 - w) * mu[0] + w * mu[1], mode)


class ImageVAE(VAE):
    """Conv encoder and decoder on digits; the decoder gives each pixel a categorical over the 17 levels, or a
    discretised logistic."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        if config.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {config.likelihood!r}")
        c, d = config.hidden, config.latent_dim
        out = gdata.DIGIT_LEVELS if config.likelihood == "categorical" else 2
        if config.ar_layers and config.likelihood != "categorical":
            raise ValueError("ar_layers needs likelihood='categorical' (the PixelCNN's conditionals are categorical)")
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
        # the autoregressive part: its input is each pixel one-hot, a constant channel and the decoder's features
        levels, a = gdata.DIGIT_LEVELS, config.ar_channels
        self.ar = nn.ModuleList(GatedBlock(levels + 1 + c if i == 0 else a, a, 3, i == 0, config.ar_dropout)
                                for i in range(config.ar_layers))
        self.ar_head = nn.Conv2d(a, levels, 1) if config.ar_layers else None

    def inputs(self, x: Tensor) -> Tensor:
        """Digits (B, 1, 8, 8) as the bin centres in [-1, 1]."""
        gdata.check_digits(x)
        return gdata.levels_to_signed(x)

    @staticmethod
    def _logistic(out: Tensor) -> tuple[Tensor, Tensor]:
        """The logistic decoder's mean in (-1, 1) and log scale, each (N, 1, 8, 8)."""
        return out[:, :1].tanh(), out[:, 1:].clamp(-7.0, 3.0)

    # --8<-- [start:likelihood]
    def _logits(self, z: Tensor, x: Tensor, features: Tensor | None = None) -> Tensor:
        """The decoder's output (N, out, 8, 8) for z (N, D); with ``ar_layers``, logits f_i(z) + g_i(x_<i, z) of
        every pixel at once from the integer images x (N, 1, 8, 8) (only x_<i reaches pixel i). ``features``:
        the decoder's features of z, when already computed."""
        if not self.ar:
            return self.decoder(z)
        if features is None:
            features = self.decoder[:-1](z)  # (N, c, 8, 8): the factorised decoder before its output layer
        onehot = F.one_hot(x[:, 0], gdata.DIGIT_LEVELS).permute(0, 3, 1, 2).to(features)  # (N, 17, 8, 8)
        v = h = torch.cat([onehot, torch.ones_like(onehot[:, :1]), features], 1)
        skip = 0.0
        for block in self.ar:
            v, h = block(v, h)
            skip = skip + h  # (N, a, 8, 8), causal in x
        return self.decoder[-1](features) + self.ar_head(F.relu(skip))  # (N, 17, 8, 8)

    def log_lik(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x | z) in nats: x (B, 1, 8, 8), z (..., B, D) -> (..., B)."""
        xs = self._repeated(x, z)  # (N, 1, 8, 8): x for each sample of z
        out = self._logits(z.reshape(-1, z.shape[-1]), xs)  # (N, out, 8, 8)
        if self.config.likelihood == "categorical":  # log p(x|z) = sum_pixels log softmax(logits)[x]
            lp = -F.cross_entropy(out, xs[:, 0], reduction="none").flatten(1).sum(1)
        else:  # discretised logistic over the 17 levels
            mean, log_scale = self._logistic(out)
            lp = discretised_logistic_log_prob(xs, mean, log_scale, gdata.DIGIT_LEVELS).flatten(1).sum(1)
        return lp.reshape(z.shape[:-1])
    # --8<-- [end:likelihood]

    def decode(self, z: Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x | z) ("sample") or its most likely value ("mode"): int64 levels (N, 1, 8, 8).

        With ``ar_layers`` one pixel per pass in raster order ("mode": each pixel's most likely level given the
        ones chosen before it).
        """
        if self.ar:
            return self._decode_autoregressive(z, mode, generator)
        out = self.decoder(z)
        if self.config.likelihood == "categorical":
            logits = out.permute(0, 2, 3, 1)  # (N, 8, 8, 17)
            if mode == "mode":
                return logits.argmax(-1).unsqueeze(1)
            u = torch.rand(logits.shape, generator=generator).to(logits).clamp_min(1e-20)
            return (logits - (-u.log()).log()).argmax(-1).unsqueeze(1)  # Gumbel-max sample, (N, 1, 8, 8)
        mean, log_scale = self._logistic(out)
        if mode == "sample":  # inverse-CDF sample of the logistic
            u = torch.rand(mean.shape, generator=generator).to(mean).clamp(1e-5, 1 - 1e-5)
            mean = mean + log_scale.exp() * (u.log() - (1 - u).log())
        return gdata.signed_to_levels(mean)


    def _decode_autoregressive(self, z: Tensor, mode: str, generator: torch.Generator | None) -> Tensor:
        x = torch.zeros(z.shape[0], *gdata.DIGIT_SHAPE, dtype=torch.long, device=z.device)
        features = self.decoder[:-1](z)  # (N, c, 8, 8): the same for all 64 passes
        _, hgt, wid = gdata.DIGIT_SHAPE
        for r in range(hgt):
            for c in range(wid):
                logits = self._logits(z, x, features)[:, :, r, c]  # (N, 17): p(x_rc | x_<rc, z)
                if mode == "mode":
                    x[:, 0, r, c] = logits.argmax(1)
                else:
                    x[:, 0, r, c] = torch.multinomial(F.softmax(logits, 1), 1, generator=generator)[:, 0]
        return x


class PointVAE(VAE):
    """MLP encoder and decoder on 2-D points standardised by the training data (v = (x - m) / s); p(v | z) =
    N(f(z), diag sigma^2) with a learned sigma, so log p(x | z) = log N(v; f(z), sigma^2) - sum_d log s_d."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.standardize = Standardize(2)
        c, d = config.hidden, config.latent_dim
        self.encoder = nn.Sequential(nn.Linear(2, c), nn.SiLU(), nn.Linear(c, c), nn.SiLU(), nn.Linear(c, 2 * d))
        self.decoder = nn.Sequential(nn.Linear(d, c), nn.SiLU(), nn.Linear(c, c), nn.SiLU(), nn.Linear(c, 2))
        self.log_sigma = nn.Parameter(torch.full((2,), -2.0))  # decoder noise of p(x | z) = N(f(z), sigma^2)

    def inputs(self, x: Tensor) -> Tensor:
        """Points (B, 2) standardised: v = (x - m) / s."""
        gdata.check_points(x)
        return self.standardize(x)[0]

    def log_lik(self, x: Tensor, z: Tensor) -> Tensor:
        """log N(v; f(z), sigma^2) + log|dv/dx| in nats: x (B, 2), z (..., B, D) -> (..., B)."""
        v, logdet = self.standardize(x)  # (B, 2), (B,)
        out, vs = self._decoded(v, z)  # (N, 2) each
        return log_normal(vs, out, 2 * self.log_sigma).reshape(z.shape[:-1]) + logdet

    def decode(self, z: Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> Tensor:
        """x = m + s v with v ~ N(f(z), sigma^2) ("sample") or v = f(z) ("mode"), (N, 2)."""
        out = self.decoder(z)
        noise = torch.randn(out.shape, generator=generator).to(out) if mode == "sample" else 0.0
        return self.standardize.inverse(out + self.log_sigma.exp() * noise)


config_for = VAEConfig.for_data


def build(data: str = "digits", /, **overrides: object) -> VAE:
    """A VAE for "digits" (:class:`ImageVAE`) or a 2-D toy (:class:`PointVAE`), the config's defaults for
    ``data`` replaced by ``overrides``."""
    config = config_for(data, **overrides)
    return ImageVAE(config) if config.image else PointVAE(config)
