"""Metrics: likelihood in nats and bits per dimension, and sample quality with no downloads.

* **NLL** in nats per example; **bits per dimension** = nats / (D ln 2). On digits a continuous density
  of the uniformly dequantised y = (x + u) / 17 bounds the discrete NLL: nll_x <= nll_y + 64 log 17
  (Theis et al., 2016, "A note on the evaluation of generative models").
* **Sample quality** on digits, from the features of a small classifier trained on the digits train split
  (trained once, seeded, cached): Frechet distance (FD, the FID recipe of Heusel et al., 2017), kernel
  distance (KID: unbiased MMD^2 with the cubic polynomial kernel, Binkowski et al., 2018), MMD with
  Gaussian kernels on pixels (Gretton et al., 2012), and 1-nearest-neighbour two-sample accuracy
  (Lopez-Paz & Oquab, 2017). Each has a floor: its value for the train split against the test split.
* **2-D toys**: MMD and 1-NN against fresh draws; for 8gaussians, modes covered and the share of
  high-quality samples (within 3 sigma of a mode).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gdl_ref import data as gdata

__all__ = ["bits_per_dim", "dequantized_nll"]


# --8<-- [start:nll]
def bits_per_dim(nats: float | Tensor, dims: int) -> float | Tensor:
    """Bits per dimension: nats / (D ln 2)."""
    return nats / (dims * math.log(2))


def dequantized_nll(nll_unit: Tensor, dims: int = gdata.DIGIT_DIMS, levels: int = gdata.DIGIT_LEVELS) -> Tensor:
    """Discrete NLL bound from the NLL of y = (x + u) / levels on [0, 1)^D: nll_unit + D log(levels).

    The change of variables from [0, levels)^D to [0, 1)^D divides the density by levels^D.
    """
    return nll_unit + dims * math.log(levels)
# --8<-- [end:nll]
