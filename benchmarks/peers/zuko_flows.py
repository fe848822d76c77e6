"""Peer: zuko's neural spline flow (NSF) and masked autoregressive flow (MAF), paired with ``flow``.

What a user would otherwise pick for a normalizing flow in PyTorch. The harness trains them with the
same ``fit`` loop, data, split, seed and budget as ours, and scores them with the same code.

* 2-D toys: the flow models the points directly; its log-density is exact (a differential density).
* Digits: the same uniform dequantisation as ours, y = (x + u) / 17 with u ~ U[0, 1)^64, and the same
  logit pre-processing v = logit(a + (1 - 2a) y), a = 0.05; the flow models v. The discrete bound is

      -log P(x) <= -log p_Y(y) + 64 log 17,   log p_Y(y) = log p_V(v) + log |dv/dy|,

  exactly the quantity our ``ImageFlow.log_prob`` returns, so the two NLLs compare.

References: Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density Estimation" (2017);
Durkan et al., "Neural Spline Flows" (2019); zuko, https://github.com/probabilists/zuko.
"""

from __future__ import annotations

import math

import torch
import zuko
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound
from gdl_ref.bench import Peer
from gdl_ref.models.flows import FlowConfig, from_logit, to_logit
from gdl_ref.records import versions

LOGIT_ALPHA = FlowConfig.logit_alpha  # ours, so both flows see the same v
# (transforms, hidden layer widths): toys and digits
SIZES = {"toy": (5, (128, 128)), "digits": (5, (256, 256))}


class ZukoFlow(nn.Module):
    """A zuko flow in the benchmark contract: loss, log_prob (nats, data space), sample."""

    def __init__(self, kind: str, data: str) -> None:
        super().__init__()
        self.data = data
        self.digits = data == "digits"
        self.bound = Bound.DEQUANTIZED if self.digits else Bound.DIFFERENTIAL
        transforms, hidden = SIZES["digits" if self.digits else "toy"]
        features = gdata.DIGIT_DIMS if self.digits else 2
        cls = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF}[kind]
        self.flow = cls(features, transforms=transforms, hidden_features=hidden)

    def log_prob(self, x: Tensor) -> Tensor:
        """(B,) nats: exact on toys; on digits the one-draw dequantised bound in the discrete space."""
        if not self.digits:
            return self.flow().log_prob(x)
        y = gdata.dequantize(x).flatten(1)  # (B, 64)
        v, logdet = to_logit(y, LOGIT_ALPHA)
        log_py = self.flow().log_prob(v) + logdet  # log p_Y(y) = log p_V(v) + log|dv/dy|
        return log_py - gdata.DIGIT_DIMS * math.log(gdata.DIGIT_LEVELS)  # - 64 log 17

    def loss(self, x: Tensor) -> Tensor:
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        v = self.flow().sample((n,))  # (n, D)
        if not self.digits:
            return v
        return gdata.quantize(from_logit(v, LOGIT_ALPHA)).view(n, *gdata.DIGIT_SHAPE)


DATA = ("digits", *gdata.TOY_NAMES)
PEERS = [
    Peer("zuko NSF", "flow", DATA, lambda data: ZukoFlow("nsf", data), lambda: versions("zuko")),
    Peer("zuko MAF", "flow", DATA, lambda data: ZukoFlow("maf", data), lambda: versions("zuko")),
]
