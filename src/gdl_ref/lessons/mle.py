"""Maximum likelihood: fit a parametric density by minimising the negative log-likelihood.

Given data x_1..x_N drawn from p_data, maximum likelihood picks

    theta_hat = argmax_theta sum_n log p_theta(x_n) = argmin_theta NLL(theta),
    NLL(theta) = -(1/N) sum_n log p_theta(x_n).

As N grows the NLL tends to the cross-entropy H(p_data, p_theta) = H(p_data) + KL(p_data || p_theta), and
H(p_data) does not depend on theta, so minimising the NLL minimises KL(p_data || p_theta). On the 2-D toys,
whose entropy H is known (``data.toy_entropy``), a model's test NLL minus H estimates that KL (>= 0).

Here: a full-covariance Gaussian and a categorical, each with its closed-form MLE and a gradient-descent
fit by ``train.fit`` that reaches it; a Gaussian mixture (no closed form) fitted by gradient descent;
an independent categorical per pixel for the digits (the baseline every deep family must beat).

References: Bishop, *Pattern Recognition and Machine Learning* (2006), sections 2.3.4 and 9.2;
Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 5.5; Foster, *Generative Deep Learning*,
2nd ed. (2023), chapter 1 ("Generative modeling as maximum likelihood estimation").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.evaluate import paired_kl
from gdl_ref.likelihood import LOG_2PI, Bound, DensityModule, normal_log_density
from gdl_ref.models.registry import FamilyConfig

__all__ = [
    "fit_gaussian_closed_form", "fit_gaussian_gd", "fit_categorical_closed_form", "Gaussian",
    "Categorical", "GaussianMixture", "PixelCategorical", "MLEConfig", "kl_from_truth", "build",
]


# --8<-- [start:closed_form]
def fit_gaussian_closed_form(x: Tensor) -> tuple[Tensor, Tensor]:
    """MLE of N(mu, Sigma) from x (N, D): mu = mean of x, Sigma = (1/N) sum (x - mu)(x - mu)^T.

    Note the 1/N (the maximum-likelihood estimate), not the unbiased 1/(N - 1).
    """
    mu = x.mean(0)  # (D,)
    centred = x - mu  # (N, D)
    return mu, centred.T @ centred / len(x)  # (D,), (D, D)


def fit_categorical_closed_form(x: Tensor, levels: int, pseudocount: float = 0.0) -> Tensor:
    """MLE of a categorical from integer samples x (N,): p_k = count_k / N (with additive smoothing).

    ``pseudocount`` a > 0 gives (count_k + a) / (N + K a), the posterior mean under a Dirichlet(a + 1)
    prior's mode -- no longer the MLE, but never zero on a level unseen in training.
    """
    counts = torch.bincount(x.flatten(), minlength=levels).float()  # (K,)
    return (counts + pseudocount) / (counts.sum() + levels * pseudocount)
# --8<-- [end:closed_form]


# --8<-- [start:gaussian]
class Gaussian(DensityModule):
    """N(mu, Sigma) in D dimensions, Sigma = L L^T with L lower-triangular, positive diagonal."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dims))
        self.raw_l = nn.Parameter(torch.zeros(dims, dims))  # diagonal stores log L_ii

    def scale_tril(self) -> Tensor:
        """L (D, D): strictly-lower part as is, diagonal exp(.) > 0."""
        return torch.tril(self.raw_l, -1) + torch.diag(torch.exp(torch.diagonal(self.raw_l)))

    @property
    def covariance(self) -> Tensor:
        scale = self.scale_tril()
        return scale @ scale.T  # Sigma = L L^T

    @classmethod
    @torch.no_grad()
    def from_closed_form(cls, x: Tensor) -> Gaussian:
        """The Gaussian with the closed-form MLE of x (N, D) as its parameters."""
        mu, cov = fit_gaussian_closed_form(x)
        model = cls(x.shape[1])
        scale = torch.linalg.cholesky(cov)  # Sigma = L L^T
        model.mu.copy_(mu)
        model.raw_l.copy_(torch.tril(scale, -1) + torch.diag(torch.log(torch.diagonal(scale))))
        return model

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log N(x; mu, L L^T) = -1/2 |L^-1 (x - mu)|^2 - sum_i log L_ii - D/2 log 2 pi, (N,)."""
        gdata.check_points(x, self.mu.numel())
        scale = self.scale_tril()
        z = torch.linalg.solve_triangular(scale, (x - self.mu).T, upper=False).T  # (N, D)
        return -0.5 * (z**2).sum(-1) - torch.diagonal(self.raw_l).sum() - 0.5 * len(self.mu) * LOG_2PI

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.mu.numel(), generator=generator, device=self.mu.device)
        return self.mu + eps @ self.scale_tril().T  # x = mu + L eps
# --8<-- [end:gaussian]


# --8<-- [start:gd]
def fit_gaussian_gd(x: Tensor, steps: int = 300, lr: float = 0.05) -> tuple[Tensor, Tensor]:
    """The same MLE as ``fit_gaussian_closed_form``, found by gradient descent on the NLL with ``fit``."""
    from gdl_ref.train import fit

    model = Gaussian(x.shape[1])
    fit(model, x, steps=steps, batch_size=len(x), lr=lr)  # full batch: the exact NLL gradient
    return model.mu.detach(), model.covariance.detach()
# --8<-- [end:gd]


class Categorical(DensityModule):
    """A categorical over ``levels`` outcomes, p = softmax(logits); loss = NLL of integer samples."""

    bound = Bound.EXACT

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(levels))

    @property
    def probs(self) -> Tensor:
        return F.softmax(self.logits, -1)

    def log_likelihood(self, x: Tensor) -> Tensor:
        return F.log_softmax(self.logits, -1)[x]  # log p_{x}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=generator)


# --8<-- [start:mixture]
class GaussianMixture(DensityModule):
    """p(x) = sum_k pi_k N(x; mu_k, diag(sigma_k^2)); no closed-form MLE, so gradient descent on the NLL."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, dims: int = 2, components: int = 8, init: Tensor | None = None,
                 init_std: float = 1.0) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))  # pi = softmax(logits)
        means = init[:components].clone() if init is not None else torch.randn(components, dims)
        self.means = nn.Parameter(means)  # (K, D)
        self.log_std = nn.Parameter(torch.full((components, dims), math.log(init_std)))  # (K, D)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log sum_k exp(log pi_k + log N(x; mu_k, sigma_k^2)), (N,) -- logsumexp for stability."""
        gdata.check_points(x, self.means.shape[1])
        log_n = normal_log_density(x[:, None, :], self.means, 2 * self.log_std).sum(-1)  # (N, K)
        return torch.logsumexp(F.log_softmax(self.logits, -1) + log_n, -1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.multinomial(F.softmax(self.logits, -1), n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.means.shape[1], generator=generator, device=self.means.device)
        return self.means[k] + eps * torch.exp(self.log_std[k])
# --8<-- [end:mixture]


# --8<-- [start:pixels]
class PixelCategorical(DensityModule):
    """Digits as 64 independent categoricals: p(x) = prod_i theta_{i, x_i}. Its MLE is counting."""

    bound = Bound.EXACT

    def __init__(self, levels: int = gdata.DIGIT_LEVELS) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(gdata.DIGIT_DIMS, levels))  # (64, L)

    @torch.no_grad()
    def fit_closed_form(self, x: Tensor, pseudocount: float = 1.0) -> PixelCategorical:
        """theta_{i,k} = (count of level k at pixel i + a) / (N + L a); a = 0 is the plain MLE."""
        gdata.check_digits(x)
        onehot = F.one_hot(x.flatten(1), self.logits.shape[1]).float()  # (N, 64, L)
        counts = onehot.sum(0) + pseudocount  # (64, L)
        self.logits.copy_(torch.log(counts / counts.sum(-1, keepdim=True)))
        return self

    def log_likelihood(self, x: Tensor) -> Tensor:
        gdata.check_digits(x)
        logp = F.log_softmax(self.logits, -1)  # (64, L)
        return logp[torch.arange(gdata.DIGIT_DIMS), x.flatten(1)].sum(-1)  # sum_i log theta_{i, x_i}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        probs = F.softmax(self.logits, -1)  # (64, L)
        x = torch.multinomial(probs, n, replacement=True, generator=generator)  # (64, n)
        return x.T.reshape(n, *gdata.DIGIT_SHAPE)
# --8<-- [end:pixels]


# --8<-- [start:kl]
def kl_from_truth(model: nn.Module, name: str, split: str = "test") -> dict[str, float]:
    """A toy's held-out NLL (with its standard error) under ``model``, its true entropy H, and
    KL(p_data || p_model) with its standard error.

    E_p[-log q] = H(p) + KL(p || q). The KL is estimated paired, on the same points x_i ~ p:
    KL ~ (1/N) sum_i [log p(x_i) - log q(x_i)], so the noise the two log-densities share cancels
    (``gdl_ref.evaluate.paired_kl``); the NLL minus H would carry the full noise of the test sample.
    """
    x = gdata.load(name, split)  # (N, 2)
    with torch.no_grad():
        log_q = model.log_prob(x)  # (N,)
    kl, stderr = paired_kl(gdata.toy_log_prob(name, x), log_q)
    return {"nll": float(-log_q.mean()), "nll_stderr": float(log_q.std() / math.sqrt(len(x))),
            "entropy": gdata.toy_entropy(name).nats, "kl": kl, "stderr": stderr}
# --8<-- [end:kl]


@dataclass
class MLEConfig(FamilyConfig):
    """Which parametric density ``build`` makes; all train in seconds on a CPU."""

    data: str = "moons"
    model: str = "mixture"  # toys: "mixture" or "gaussian"; digits: always "pixels"
    components: int = 8  # mixture: K components
    seed: int = 0  # mixture: initial means are K training points drawn with this seed


def build(data: str, /, **overrides: object) -> nn.Module:
    """PixelCategorical for "digits"; a GaussianMixture (or Gaussian) for a 2-D toy. Keeps ``.config``."""
    if data == "digits":
        overrides.setdefault("model", "pixels")
    cfg = MLEConfig.for_data(data, **overrides)
    valid = ("pixels",) if data == "digits" else ("mixture", "gaussian")
    if cfg.model not in valid:
        raise ValueError(f"model {cfg.model!r} not available for {data}; valid: {', '.join(valid)}")
    model: nn.Module
    if cfg.model == "pixels":
        model = PixelCategorical()
    elif cfg.model == "gaussian":
        model = Gaussian(2)
    else:
        train = gdata.load(data, "train")
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.components]
        spread = float(train.std(0).mean()) / math.sqrt(cfg.components)  # components narrower than the data
        model = GaussianMixture(2, cfg.components, init=train[pick], init_std=spread)
    model.config = cfg  # type: ignore[assignment]
    return model
