"""Autoregressive models: a gated PixelCNN for digits and a MADE for the 2-D toys.

An autoregressive model factorises the joint density by the chain rule in a fixed order,

    p(x) = prod_i p(x_i | x_1, ..., x_{i-1}),

and makes every conditional a tractable distribution whose parameters a network computes from the
previous coordinates only. The log-likelihood is then exact: a sum of D conditional log-probabilities,
all computed in one parallel forward pass (the masks hide the future); sampling is sequential, one
coordinate per pass.

* :class:`PixelCNN` -- digits, 8x8 pixels in raster order, each pixel a categorical over the 17 grey
  levels (exact discrete NLL). Masked convolutions (type A hides the centre pixel, type B shows it)
  arranged as a gated PixelCNN with a vertical and a horizontal stack, so that the receptive field of
  pixel i is every pixel before it, with no blind spot.
* :class:`MADE` -- the 2-D toys: p(x) = p(x_1) p(x_2 | x_1) with masked linear layers (MADE) and a
  mixture of K Gaussians for each conditional, a continuous density on R^2.

References: van den Oord, Kalchbrenner & Kavukcuoglu (2016), "Pixel Recurrent Neural Networks"
(masks A/B); van den Oord et al. (2016), "Conditional Image Generation with PixelCNN Decoders" (gated
blocks, vertical/horizontal stacks); Germain et al. (2015), "MADE: Masked Autoencoder for Distribution
Estimation"; Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound, DensityModule, discretised_logistic_log_prob, evaluating, normal_log_density
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.standardize import Standardize

__all__ = [
    "PixelCNNConfig", "PixelCNN", "MADEConfig", "MADE", "MaskedConv2d", "MaskedLinear",
    "raster_mask", "vertical_mask", "config_for", "build",
]


# --8<-- [start:masks]
def raster_mask(kh: int, kw: int, mask_type: str) -> Tensor:
    """Kernel mask (kh, kw) of a raster-order masked convolution.

    Keeps the rows above the centre and the pixels left of the centre in its row; type "A" hides the
    centre (first layer: pixel i must not see itself), type "B" shows it (later layers: the centre
    feature already depends only on pixels < i).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    m = torch.zeros(kh, kw, device="cpu")  # a fixed layout, read by MaskedConv2d even when built on "meta"
    ch, cw = kh // 2, kw // 2
    m[:ch, :] = 1  # rows above the centre
    m[ch, :cw] = 1  # left of the centre, same row
    m[ch, cw] = float(mask_type == "B")  # the centre itself: B yes, A no
    return m


def vertical_mask(kh: int, kw: int) -> Tensor:
    """Mask (kh, kw) of the vertical stack: the centre row and every row above it, full width.

    The vertical stack sees rows <= r; it reaches the horizontal stack only after a one-row shift
    down, so pixel (r, c) receives rows < r from it -- no blind spot to the upper right.
    """
    m = torch.zeros(kh, kw, device="cpu")  # a fixed layout, as in raster_mask
    m[: kh // 2 + 1, :] = 1
    return m


class MaskedConv2d(nn.Module):
    """A 'same' convolution whose k x k kernel is multiplied by a fixed 0/1 mask: w' = w * M.

    Only the taps inside the mask's bounding box are stored and computed (the rest are always zero):
    the input is padded, or cropped, so that each output pixel still sees exactly the masked window.
    """

    def __init__(self, c_in: int, c_out: int, mask: Tensor) -> None:
        super().__init__()
        kh, kw = mask.shape
        rows, cols = mask.nonzero(as_tuple=True)
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        conv = nn.Conv2d(c_in, c_out, (r1 - r0 + 1, c1 - c0 + 1))  # the bounding box of the mask
        self.weight, self.bias = conv.weight, conv.bias  # (C_out, C_in, h, w), (C_out,)
        self.register_buffer("mask", mask[None, None, r0:r1 + 1, c0:c1 + 1].clone())
        # output (i, j) = sum_{a, b} w[a, b] x[i + a - kh // 2, j + b - kw // 2] over the kept (a, b)
        self.pad = (kw // 2 - c0, c1 - kw // 2, kh // 2 - r0, r1 - kh // 2)  # left, right, top, bottom

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        return F.conv2d(F.pad(x, self.pad), self.weight * self.mask, self.bias)  # negative pad = crop


# --8<-- [end:masks]


# --8<-- [start:gated]
def gate(a: Tensor) -> Tensor:
    """Gated activation tanh(a_f) * sigmoid(a_g), the halves split along channels."""
    f, g = a.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)  # y = tanh(W_f * x) . sigma(W_g * x)


class GatedBlock(nn.Module):
    """One gated PixelCNN layer: a vertical stack (rows <= r) feeding a horizontal stack (row r, cols <= c)."""

    def __init__(self, c_in: int, channels: int, kernel: int, first: bool, dropout: float) -> None:
        super().__init__()
        self.first = first
        self.v = MaskedConv2d(c_in, 2 * channels, vertical_mask(kernel, kernel))
        self.h = MaskedConv2d(c_in, 2 * channels, raster_mask(1, kernel, "A" if first else "B"))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:  # (B, C, H, W) each
        v_pre = self.v(v)  # (B, 2C, H, W): sees rows <= r
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # shift one row down: sees rows < r
        h_pre = self.h(h) + self.v_to_h(v_down)  # row r left of c (A) or up to c (B), plus rows < r
        h_new = self.h_out(self.drop(gate(h_pre)))
        if not self.first:  # residual (the first layer's input still holds pixel i itself)
            h_new = h_new + h
        return gate(v_pre), h_new
# --8<-- [end:gated]


@dataclass
class PixelCNNConfig(FamilyConfig):
    """Gated PixelCNN on digits; defaults sized for a 2-core CPU (it stops early on the val split well inside its step budget)."""

    DATA = ("digits",)
    levels: int = gdata.DIGIT_LEVELS  # categories per pixel (17 grey levels)
    size: int = 8  # images are (1, size, size)
    channels: int = 64  # feature maps in each stack
    layers: int = 7  # gated blocks: with kernel 3, 7 reach every earlier pixel of an 8x8 image (6 do not)
    kernel: int = 3  # vertical stack k x k (rows <= r), horizontal stack 1 x k
    hidden: int = 128  # width of the 1x1 output head
    dropout: float = 0.5  # on the gated features of the horizontal stack (1,000 digits: 0.3 overfits sooner)
    position_bias: bool = True  # a learned logit bias per pixel and level (8x8 images are not translation invariant)
    coordinates: bool = True  # two extra input channels holding each pixel's row and column in [-1, 1]
    output: str = "softmax"  # each conditional: "softmax" over the levels, or "logistic" (a discretised mixture)
    mixtures: int = 5  # components of the discretised logistic mixture (output="logistic")

    RANGES = {"levels": (2, 256), "dropout": (0.0, 1.0), "mixtures": (1, 64)}
    CHOICES = {"output": ("softmax", "logistic")}

    def recipe(self) -> dict[str, Any]:
        """AdamW with weight decay, an EMA of the weights, early stopping on the val split."""
        return {"batch_size": 64, "lr": 3e-3, "weight_decay": 0.5, "ema_decay": 0.995, "eval_every": 50,
                "patience": 4}


class PixelCNN(DensityModule):
    """p(x) = prod_i Cat(x_i | softmax(f_i(x_<i))) over the 64 pixels of a digit, raster order."""

    bound = Bound.EXACT

    def __init__(self, config: PixelCNNConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or PixelCNNConfig()
        c_in = cfg.levels + 1 + 2 * cfg.coordinates  # one-hot + a constant channel (zero padding marks borders)
        self.blocks = nn.ModuleList(
            GatedBlock(c_in if i == 0 else cfg.channels, cfg.channels, cfg.kernel, i == 0, cfg.dropout)
            for i in range(cfg.layers)
        )
        out = cfg.levels if cfg.output == "softmax" else 3 * cfg.mixtures  # logits, or (weight, mean, scale) each
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(cfg.channels, cfg.hidden, 1), nn.ReLU(),
                                  nn.Conv2d(cfg.hidden, out, 1))
        self.shape = (1, cfg.size, cfg.size)  # (C, H, W)
        self.bias = nn.Parameter(torch.zeros(1, cfg.levels, cfg.size, cfg.size)) if cfg.position_bias else None

    # --8<-- [start:logits]
    def forward(self, onehot: Tensor) -> Tensor:
        """Logits (B, L, H, W) of p(x_i | x_<i) for every pixel at once, from one-hot pixels (B, L, H, W)."""
        extra = [torch.ones_like(onehot[:, :1])]  # (B, 1, H, W)
        if self.config.coordinates:  # where the pixel is: not data, so no causality concern
            b, _, hgt, wid = onehot.shape
            rows = torch.linspace(-1, 1, hgt, device=onehot.device).view(1, 1, hgt, 1).expand(b, 1, hgt, wid)
            cols = torch.linspace(-1, 1, wid, device=onehot.device).view(1, 1, 1, wid).expand(b, 1, hgt, wid)
            extra += [rows, cols]
        v = h = torch.cat([onehot, *extra], 1)
        skip = 0.0
        for block in self.blocks:
            v, h = block(v, h)
            skip = skip + h  # skip connections from every layer to the head
        out = self.head(skip)  # (B, L, H, W), or (B, 3K, H, W) for the logistic mixture
        if self.config.output == "logistic":
            out = self.mixture_log_probs(out)
        return out if self.bias is None else out + self.bias

    def mixture_log_probs(self, out: Tensor) -> Tensor:
        """log P(level) (B, L, H, W) of a mixture of K logistics binned on the levels (PixelCNN++, Salimans et al.,
        2017): P(l) = sum_k pi_k [sigma((c_l + h - mu_k) / s_k) - sigma((c_l - h - mu_k) / s_k)], from the head's
        (B, 3K, H, W) = (logits of pi, mu before tanh, log s). Neighbouring levels share each component, so a
        conditional is smooth in the grey level where a softmax learns 17 free numbers a pixel."""
        b, _, hgt, wid = out.shape
        k, levels = self.config.mixtures, self.config.levels
        logit_pi, mean, log_scale = out.view(b, 3, k, hgt, wid).unbind(1)  # (B, K, H, W) each
        grid = torch.arange(levels, device=out.device).view(1, levels, 1, 1, 1)  # every level at once
        lp = discretised_logistic_log_prob(grid, mean.tanh().unsqueeze(1), log_scale.clamp(-7.0, 3.0).unsqueeze(1),
                                           levels)  # (B, L, K, H, W)
        return torch.logsumexp(lp + F.log_softmax(logit_pi, 1).unsqueeze(1), 2)  # (B, L, H, W)

    def logits(self, x: Tensor) -> Tensor:
        """Logits (B, L, H, W) for integer images x (B, 1, H, W); their softmax is p(x_i | x_<i) either way."""
        gdata.check_digits(x, shape=self.shape, levels=self.config.levels)
        return self(F.one_hot(x[:, 0], self.config.levels).permute(0, 3, 1, 2).float())

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Exact log p(x) in nats, (B,): sum over pixels of log softmax at the observed level."""
        logp = F.log_softmax(self.logits(x), dim=1)  # (B, L, H, W)
        return logp.gather(1, x).sum(dim=(1, 2, 3))  # log p(x) = sum_i log p(x_i | x_<i)
    # --8<-- [end:logits]

    # --8<-- [start:sample]
    @evaluating
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n images int64 (n, 1, H, W), one pixel per forward pass in raster order.

        Temperature T rescales the logits: p_T(x_i) proportional to p(x_i | x_<i)^(1/T); T < 1 sharper.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        device = next(self.parameters()).device
        _, hgt, wid = self.shape
        x = torch.zeros(n, *self.shape, dtype=torch.long, device=device)
        for r in range(hgt):
            for c in range(wid):
                probs = F.softmax(self.logits(x)[:, :, r, c] / temperature, dim=1)  # (n, L)
                x[:, 0, r, c] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return x
    # --8<-- [end:sample]


# ---------------------------------------------------------------------------------------------
# MADE with mixture-of-Gaussians conditionals, for the 2-D toys
# ---------------------------------------------------------------------------------------------

# --8<-- [start:made]
class MaskedLinear(nn.Linear):
    """A linear layer y = (W * M) x + b with a fixed 0/1 connectivity mask M (out, in)."""

    def __init__(self, d_in: int, d_out: int, mask: Tensor) -> None:
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.float().clone())  # (d_out, d_in)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(dims: int, hidden: list[int]) -> list[Tensor]:
    """MADE masks from degrees: input i has degree i (1..D); hidden unit k a degree m_k in 1..D-1.

    Hidden-from-input: keep m_k >= i. Output-from-hidden: keep d > m_k, so output d depends on
    inputs < d only (output 1 depends on nothing: a learned marginal).
    """
    d_in = torch.arange(1, dims + 1)
    degrees = [d_in]
    for width in hidden:
        degrees.append(torch.arange(width) % max(dims - 1, 1) + 1)  # cycle through 1..D-1
    masks = [(degrees[k + 1][:, None] >= degrees[k][None, :]) for k in range(len(hidden))]
    masks.append(d_in[:, None] > degrees[-1][None, :])  # (D, H_last)
    return masks
# --8<-- [end:made]


@dataclass
class MADEConfig(FamilyConfig):
    """MADE on a 2-D toy with a mixture of Gaussians per conditional; a few seconds of CPU training."""

    DATA = gdata.TOY_NAMES
    data: str = "moons"
    dims: int = 2
    hidden: int = 128  # width of each masked hidden layer
    depth: int = 2  # masked hidden layers
    components: int = 16  # K Gaussians per conditional
    init_range: float = 3.0  # initial component means spread evenly over [-R, R] of the standardised data

    def recipe(self) -> dict[str, Any]:
        """Batch size, learning rate, an EMA of the weights, early stopping on the val split."""
        return {"batch_size": 256, "lr": 3e-3, "ema_decay": 0.995, "eval_every": 250, "patience": 8}


class MADE(DensityModule):
    """p(x) = prod_d sum_k pi_dk(v_<d) N(v_d; mu_dk(v_<d), sigma_dk(v_<d)^2) / s_d, v = (x - m) / s the points
    standardised by the training data's mean m and scale s."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, config: MADEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MADEConfig()
        dims, k = cfg.dims, cfg.components
        masks = made_masks(dims, [cfg.hidden] * cfg.depth)
        layers: list[nn.Module] = []
        widths = [dims] + [cfg.hidden] * cfg.depth
        for i in range(cfg.depth):
            layers += [MaskedLinear(widths[i], widths[i + 1], masks[i]), nn.ReLU()]
        self.standardize = Standardize(dims)
        self.body = nn.Sequential(*layers)
        # output: 3K parameters per dimension, each row copying that dimension's mask
        out_mask = masks[-1].repeat_interleave(3 * k, dim=0)  # (D*3K, H)
        self.out = MaskedLinear(cfg.hidden, dims * 3 * k, out_mask)
        with torch.no_grad():  # start every mixture with its means spread over [-R, R], not all at 0
            bias = self.out.bias.view(dims, 3, k)
            bias[:, 0] = 0.0  # equal weights
            bias[:, 1] = torch.linspace(-cfg.init_range, cfg.init_range, k)  # means
            bias[:, 2] = math.log(2 * cfg.init_range / k)  # log-stds: about one spacing
            self.out.weight.mul_(0.1)

    # --8<-- [start:made_logprob]
    def params(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture logits, means, log-stds, each (B, D, K); row d depends on x_<d only."""
        b, d, k = x.shape[0], self.config.dims, self.config.components
        p = self.out(self.body(x)).view(b, d, 3, k)
        return p[:, :, 0], p[:, :, 1], p[:, :, 2].clamp(-7.0, 5.0)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) (B,) = sum_d log sum_k pi_dk N(v_d; mu_dk, sigma_dk^2) + log|dv/dx|, v standardised."""
        gdata.check_points(x, self.config.dims)
        v, logdet = self.standardize(x)  # (B, D), (B,)
        logit, mu, log_s = self.params(v)
        log_n = normal_log_density(v[:, :, None], mu, 2 * log_s)  # log N(v_d; mu, sigma^2), (B, D, K)
        return torch.logsumexp(F.log_softmax(logit, -1) + log_n, -1).sum(-1) + logdet
    # --8<-- [end:made_logprob]

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n points (n, D), one coordinate per pass: pick a component, then draw from its Gaussian."""
        device = next(self.parameters()).device
        v = torch.zeros(n, self.config.dims, device=device)
        for d in range(self.config.dims):
            logit, mu, log_s = (t[:, d] for t in self.params(v))  # (n, K) each
            k = torch.multinomial(F.softmax(logit, -1), 1, generator=generator)  # (n, 1)
            eps = torch.randn(n, generator=generator, device=device)
            v[:, d] = mu.gather(1, k)[:, 0] + log_s.gather(1, k)[:, 0].exp() * eps
        return self.standardize.inverse(v)


def config_for(data: str, /, **overrides: object) -> PixelCNNConfig | MADEConfig:
    """A PixelCNN's config for "digits", a MADE's for a 2-D toy, the defaults replaced by ``overrides``."""
    if data not in (*PixelCNNConfig.DATA, *MADEConfig.DATA):
        raise ValueError(f"unknown data {data!r}; valid: {', '.join((*PixelCNNConfig.DATA, *MADEConfig.DATA))}")
    return (PixelCNNConfig if data in PixelCNNConfig.DATA else MADEConfig).for_data(data, **overrides)


def build(data: str, /, **overrides: object) -> PixelCNN | MADE:
    """PixelCNN for "digits", MADE for a 2-D toy, with the config defaults and ``overrides``.

    ``build(data, **dataclasses.asdict(model.config))`` rebuilds the same architecture.
    """
    config = config_for(data, **overrides)
    return PixelCNN(config) if isinstance(config, PixelCNNConfig) else MADE(config)
