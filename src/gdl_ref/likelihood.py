"""Likelihood: what kind of number a density model reports, and the densities every family shares.

A density model reports ``log_prob(x)`` in nats, one value per example, and says what that value is:

* ``Bound.EXACT`` -- log P(x) of a discrete model (autoregressive models on the 17 grey levels);
* ``Bound.DIFFERENTIAL`` -- log p(x) of a continuous density on continuous data (flows and MADE on 2-D toys);
* ``Bound.DEQUANTIZED`` -- a continuous density on uniformly dequantised pixels; E_u[log p(x + u)] <= log P(x)
  (Theis et al., 2016, "A note on the evaluation of generative models");
* ``Bound.ELBO`` -- the evidence lower bound E_q[log p(x, z) - log q(z | x)] <= log p(x) (Kingma & Welling, 2014);
  diffusion's variational bound is one (Ho et al., 2020, eq. 5);
* ``Bound.IWAE`` -- the importance-weighted bound with K samples, tighter than the ELBO (Burda et al., 2016).

Every bound holds in expectation over its Monte-Carlo draws; one draw can land on either side.

The helpers below: the normal log-density, the discretised Gaussian and
logistic over the grey levels (computed in log space, so a pixel far in a tail keeps its exact log-probability
and its gradient), the change of variables of dequantisation, and bits per dimension. ``evaluating`` makes
``log_prob`` and ``sample`` run in eval mode (no dropout, batch-norm running statistics) and restores the mode.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from enum import Enum
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref.eval_mode import evaluation

__all__ = ["Bound", "DensityModel", "DensityModule", "evaluating", "LOG_2PI", "normal_log_density", "log_normal",
           "log1mexp", "discretised_gaussian_log_prob", "discretised_logistic_log_prob", "dequantized_nll",
           "bits_per_dim"]

LOG_2PI = math.log(2 * math.pi)


class Bound(str, Enum):
    """The kind of number ``log_prob`` returns (its value is the name written to JSON and tables)."""

    EXACT = "exact"
    DIFFERENTIAL = "differential"
    DEQUANTIZED = "dequantized"
    ELBO = "elbo"
    IWAE = "iwae"


@runtime_checkable
class DensityModel(Protocol):
    """A model that scores data: ``log_prob(x)`` in nats, shape (B,), and the kind of bound it gives."""

    bound: Bound

    def log_prob(self, x: Tensor) -> Tensor: ...


Method = TypeVar("Method", bound=Callable[..., object])


# --8<-- [start:evaluating]
def evaluating(method: Method) -> Method:
    """Run a module's method in eval mode (dropout off, batch norm on its running statistics), then put back
    the mode each submodule was in: a score or a sample must not depend on whether training was under way.
    The method draws from the caller's random stream (``evaluation(self, fork=False)``)."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args: object, **kwargs: object) -> object:
        with evaluation(self, fork=False):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
# --8<-- [end:evaluating]


class DensityModule(nn.Module):
    """Base of the density models: ``log_likelihood(x)`` is the score in whatever mode the module is in (what
    ``loss`` minimises), ``log_prob(x)`` the same score in eval mode; ``bound`` says what kind of number it is."""

    bound: ClassVar[Bound]

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) in nats, (B,), in the module's current mode."""
        raise NotImplementedError

    @evaluating
    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats, (B,), in eval mode (the mode is restored afterwards)."""
        return self.log_likelihood(x)

    def loss(self, x: Tensor) -> Tensor:
        """Mean negative log-likelihood, nats per example."""
        return -self.log_likelihood(x).mean()


# --8<-- [start:normal]
def normal_log_density(x: Tensor, mean: Tensor | float = 0.0, log_var: Tensor | float = 0.0) -> Tensor:
    """log N(x; mean, exp(log_var)) elementwise: -1/2 (log 2 pi + log_var + (x - mean)^2 / exp(log_var))."""
    log_var = torch.as_tensor(log_var, dtype=x.dtype, device=x.device)
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def log_normal(z: Tensor, mu: Tensor | float = 0.0, logvar: Tensor | float = 0.0) -> Tensor:
    """log N(z; mu, diag exp(logvar)) of vectors: the elementwise density summed over the last dimension."""
    return normal_log_density(z, mu, logvar).sum(-1)
# --8<-- [end:normal]


# --8<-- [start:bins]
def log1mexp(a: Tensor) -> Tensor:
    """log(1 - exp(a)) for a < 0, accurate at both ends (Maechler, 2012): log(-expm1(a)) near 0, else
    log1p(-exp(a)). Each branch gets a clamped input, so neither value nor gradient is ever NaN."""
    cut = -math.log(2)
    tiny = torch.finfo(a.dtype).tiny
    return torch.where(a > cut, torch.log(-torch.expm1(a.clamp(cut, -tiny))), torch.log1p(-torch.exp(a.clamp(max=cut))))


def _bin_edges(x: Tensor, mean: Tensor, levels: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Edges lo, hi of level x's bin of [-1, 1] relative to ``mean``, and the masks of the first and last bin.

    Level k has centre c = 2k/(L-1) - 1 and half-width h = 1/(L-1). The first bin reaches -inf and the last
    +inf, so that the L probabilities sum to one; their finite edge values here are never used.
    """
    c = 2 * x.to(mean.dtype) / (levels - 1) - 1  # bin centre in [-1, 1]
    h = 1.0 / (levels - 1)
    return c - h - mean, c + h - mean, x == 0, x == levels - 1
# --8<-- [end:bins]


# --8<-- [start:discretised_gaussian]
def discretised_gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor, levels: int) -> Tensor:
    """log P(x) = log(Phi(b) - Phi(a)) of levels 0..L-1 under N(mean, std^2) binned on [-1, 1] (Ho et al., eq. 13).

    a, b are the bin's edges in units of std. In log space: log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b)))
    with log Phi = ``torch.special.log_ndtr``; a bin in the upper tail uses Phi(b) - Phi(a) = Phi(-a) - Phi(-b),
    so both terms are read from the lower tail, where log_ndtr keeps full precision. End bins: log Phi(b) for the
    first (a = -inf), log Phi(-a) for the last (b = +inf).
    """
    lo, hi, first, last = _bin_edges(x, mean, levels)
    a, b = lo / std, hi / std  # edges in units of std, a < b
    upper = (a + b) > 0  # the bin's centre lies above the mean: mirror it
    lo_, hi_ = torch.where(upper, -b, a), torch.where(upper, -a, b)
    log_hi = torch.special.log_ndtr(hi_)
    inner = log_hi + log1mexp(torch.special.log_ndtr(lo_) - log_hi)  # log(Phi(hi_) - Phi(lo_))
    return torch.where(first, torch.special.log_ndtr(b), torch.where(last, torch.special.log_ndtr(-a), inner))
# --8<-- [end:discretised_gaussian]


# --8<-- [start:discretised_logistic]
def discretised_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """log P(x) of levels 0..L-1 under a logistic(mean, s) binned on [-1, 1] (Salimans et al., 2017).

    With a, b the bin's edges in units of s, the identity sigma(b) - sigma(a) = sigma(b) sigma(-a) (1 - e^(a-b))
    gives log P = log sigma(b) + log sigma(-a) + log(1 - e^(a-b)), log sigma(t) = -softplus(-t): no difference of
    two probabilities, and a - b = -2h/s exactly. The first bin (a = -inf) keeps log sigma(b) alone, the last
    (b = +inf) log sigma(-a) alone.
    """
    lo, hi, first, last = _bin_edges(x, mean, levels)
    inv_s = torch.exp(-log_scale)
    a, b = lo * inv_s, hi * inv_s  # edges in units of s
    zero = torch.zeros_like(a)
    log_sig_b = torch.where(last, zero, -F.softplus(-b))  # log sigma(b); sigma(+inf) = 1
    log_sig_not_a = torch.where(first, zero, -F.softplus(a))  # log sigma(-a); sigma(+inf) = 1
    gap = torch.where(first | last, zero, log1mexp(a - b))  # log(1 - e^(a-b)); 1 at an open edge
    return log_sig_b + log_sig_not_a + gap
# --8<-- [end:discretised_logistic]


# --8<-- [start:units]
def dequantized_nll(nll_unit: Tensor, dims: int, levels: int) -> Tensor:
    """Discrete NLL bound from the NLL of y = (x + u) / levels on [0, 1)^D: nll_unit + D log(levels).

    The change of variables from [0, levels)^D to [0, 1)^D divides the density by levels^D.
    """
    return nll_unit + dims * math.log(levels)


def bits_per_dim(nats: float | Tensor, dims: int) -> float | Tensor:
    """Bits per dimension: nats / (D ln 2)."""
    return nats / (dims * math.log(2))
# --8<-- [end:units]
