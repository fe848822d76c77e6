"""A fixed affine layer that puts 2-D data at zero mean and unit scale, so that a density model's own layers see the
same numbers whatever the data's location and scale.

    z = (x - m) / s,    log p_X(x) = log p_Z(z) - sum_d log s_d

m and s are the per-coordinate mean and standard deviation of the training data. They are set once, before the
first training step (``set_from``; else from the first training batch, as Glow's ActNorm initialises itself from
data, Kingma & Dhariwal, 2018), and kept as buffers: the optimiser never moves them and checkpoints keep them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Standardize"]


# --8<-- [start:standardize]
class Standardize(nn.Module):
    """z = (x - mean) / std per coordinate, with log|det dz/dx| = -sum_d log std_d; fixed once set."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dims))  # (D,)
        self.register_buffer("std", torch.ones(dims))  # (D,)
        self.register_buffer("ready", torch.tensor(False))  # set from data yet?

    @torch.no_grad()
    def set_from(self, x: Tensor) -> None:
        """mean and std of the training data x (N, D); a constant coordinate keeps std 1."""
        std = x.std(0)
        self.mean.copy_(x.mean(0))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))
        self.ready.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, D) -> z (B, D) and log|det dz/dx| (B,). In training mode, an unset layer first sets itself from x."""
        if self.training and not bool(self.ready):
            self.set_from(x.detach())
        logdet = -self.std.log().sum().expand(x.shape[0])  # (B,)
        return (x - self.mean) / self.std, logdet

    def inverse(self, z: Tensor) -> Tensor:
        """x = mean + std * z."""
        return self.mean + self.std * z
# --8<-- [end:standardize]
