"""Likelihood in one place: what kind of number a density model reports, and the helpers every family shares.

A density model reports ``log_prob(x)`` in nats, one value per example, and says what that value is:

* ``Bound.EXACT`` -- log P(x) of a discrete model (autoregressive models on the 17 grey levels);
* ``Bound.DIFFERENTIAL`` -- log p(x) of a continuous density on continuous data (flows and MADE on 2-D toys);
* ``Bound.DEQUANTIZED`` -- a continuous density on uniformly dequantised pixels; E_u[log p(x + u)] <= log P(x)
  (Theis et al., 2016, "A note on the evaluation of generative models");
* ``Bound.ELBO`` -- the evidence lower bound E_q[log p(x, z) - log q(z | x)] <= log p(x) (Kingma & Welling, 2014);
  diffusion's variational bound is one (Ho et al., 2020, eq. 5);
* ``Bound.IWAE`` -- the importance-weighted bound with K samples, tighter than the ELBO (Burda et al., 2016).

Every bound holds in expectation over its Monte-Carlo draws; one draw can land on either side.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["Bound", "DensityModel"]


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
