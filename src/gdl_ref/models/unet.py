"""A small U-Net with a sinusoidal time embedding: the noise predictor eps_theta(x_t, t) of a diffusion model.

Encoder-decoder of residual blocks with skip connections between matching resolutions; the time step t
enters every block as a learned projection of a sinusoidal embedding added to the feature maps (as in
DDPM). Sized for 8x8 images: 8x8 -> 4x4 -> 2x2 and back. :class:`MLPDenoiser` plays the same role for 2-D
points.

References: Ronneberger et al., "U-Net" (2015); Ho et al., "Denoising Diffusion Probabilistic Models" (2020),
appendix B; Vaswani et al., "Attention Is All You Need" (2017, sinusoidal embedding). Foster, Generative Deep
Learning, 2nd ed., chapter 8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --8<-- [start:time_embedding]
def time_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of integer steps t (B,) -> (B, dim): [cos(t w_j), sin(t w_j)], w_j = P^(-2j/dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)  # (B, dim)
# --8<-- [end:time_embedding]


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


# --8<-- [start:resblock]
class ResBlock(nn.Module):
    """h = x + conv(dropout(act(norm(conv(act(norm(x))) + W t_emb)))): a residual block that sees the time step."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t_proj = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, t_emb: Tensor) -> Tensor:  # x (B, c_in, H, W), t_emb (B, t_dim)
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.t_proj(t_emb)[:, :, None, None]  # add the time step to every pixel
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h
# --8<-- [end:resblock]


class UNet(nn.Module):
    """eps_theta(x_t, t): (B, C, H, W), (B,) -> (B, out_ch or C, H, W); H, W divisible by 2^(len(mults) - 1)."""

    def __init__(self, in_ch: int = 1, ch: int = 32, mults: tuple[int, ...] = (1, 2, 2),
                 out_ch: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.ch = ch
        t_dim = 4 * ch
        self.t_mlp = nn.Sequential(nn.Linear(ch, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        widths = [ch * m for m in mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = ch
        for i, w in enumerate(widths):
            self.down.append(ResBlock(c, w, t_dim, dropout))
            c = w
            last = i == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, t_dim, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(ResBlock(c + w, w, t_dim, dropout))  # concatenated skip from the same resolution
            c = w
            self.upsample.append(nn.Identity() if i == 0 else nn.Upsample(scale_factor=2, mode="nearest"))
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, out_ch or in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # starts by predicting eps = 0
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t_emb = self.t_mlp(time_embedding(t, self.ch))  # (B, 4ch)
        h = self.conv_in(x)  # (B, ch, H, W)
        skips = []
        for block, down in zip(self.down, self.downsample):
            h = block(h, t_emb)
            skips.append(h)
            h = down(h)  # halves H, W except at the lowest level
        h = self.mid(h, t_emb)
        for block, up in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], dim=1), t_emb)
            h = up(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, H, W)


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t) for points: (B, D), (B,) -> (B, D), an MLP on [x_t, embedding(t)]."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        layers: list[nn.Module] = [nn.Linear(dim + hidden, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat([x, time_embedding(t, self.hidden)], dim=-1))
