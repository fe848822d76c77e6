"""Normalizing flows: RealNVP with affine coupling layers (and rational-quadratic spline couplings).

A flow is an invertible map f from data x to a latent z = f(x) with a simple density p_Z (a standard
Gaussian). The change of variables gives the exact density

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|,

and sampling is x = f^{-1}(z), z ~ p_Z. A coupling layer keeps the Jacobian triangular: it leaves the
coordinates with mask m = 1 unchanged and transforms the others elementwise with parameters computed
from the unchanged ones,

    affine:  y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x)),   log|det| = sum (1 - m) * s,

so the log-determinant is a sum and the inverse is as cheap as the forward pass. Alternating masks
lets every coordinate be transformed. The spline coupling replaces the affine map by a monotone
rational-quadratic spline with K bins (Durkan et al., 2019), a more flexible elementwise map with the
same triangular structure; the 2-D toys use it by default because their sharp edges (the checkerboard)
and separated modes (8 Gaussians) need more than an affine map per layer can bend, and the digits because
it fits them better before it overfits (``FlowConfig.defaults``).

On digits the flow models y = (x + u) / 17, u ~ U[0, 1)^64 (``data.dequantize``), after the logit
transform y -> logit(a + (1 - 2a) y); its discrete NLL bound is -log p_Y(y) + 64 log 17 nats
(``likelihood.dequantized_nll``), ``bound = Bound.DEQUANTIZED``. On the 2-D toys a fixed affine layer first
standardises the points with the training data's mean and scale (``Standardize``, its log-determinant included),
so the spline's interval [-B, B] covers the data wherever they lie.

References: Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP"; Durkan, Bekasov,
Murray & Papamakarios (2019), "Neural Spline Flows"; Papamakarios et al. (2021), "Normalizing Flows for
Probabilistic Modeling and Inference"; Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound, DensityModule, dequantized_nll, evaluating, log_normal
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.standardize import Standardize

__all__ = ["FlowConfig", "CouplingFlow", "PointFlow", "ImageFlow", "AffineCoupling", "SplineCoupling", "rq_spline",
           "to_logit", "from_logit", "config_for", "build"]


def mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    """A ReLU MLP whose last layer starts at zero, so every coupling starts as the identity."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, d_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


# --8<-- [start:affine]
class AffineCoupling(nn.Module):
    """y = m*x + (1-m)*(x*exp(s) + t) with (s, t) = NN(m*x); s soft-clamped to (-c, c) by c*tanh(s/c)."""

    def __init__(self, mask: Tensor, hidden: int, depth: int, scale_clamp: float) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())  # (D,) 1 = passed through, 0 = transformed
        self.net = mlp(mask.numel(), 2 * mask.numel(), hidden, depth)
        self.clamp = scale_clamp

    def _st(self, x_kept: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(x_kept).chunk(2, dim=-1)  # (B, D) each
        s = self.clamp * torch.tanh(s / self.clamp)  # bounded log-scale keeps exp(s) stable
        free = 1 - self.mask
        return s * free, t * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, D) -> y (B, D) and log|det dy/dx| (B,)."""
        s, t = self._st(x * self.mask)
        y = x * torch.exp(s) + t  # s = t = 0 where mask = 1, so those coordinates pass unchanged
        return y, s.sum(-1)  # log|det J| = sum_i s_i (the Jacobian is triangular)

    def inverse(self, y: Tensor) -> Tensor:
        s, t = self._st(y * self.mask)  # y * mask = x * mask
        return (y - t) * torch.exp(-s)  # x = (y - t) * exp(-s)
# --8<-- [end:affine]


# --8<-- [start:spline]
def rq_spline(x: Tensor, w: Tensor, h: Tensor, d: Tensor, bound: float, inverse: bool = False,
              min_bin: float = 1e-3, min_deriv: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Monotone rational-quadratic spline on [-B, B], identity outside (Durkan et al., 2019, eq. 4-6).

    x (...,); unnormalised bin widths w, heights h (..., K) and inner knot derivatives d (..., K-1).
    Returns y and log|dy/dx| (...,) (for ``inverse``: x and log|dx/dy|).
    """
    k = w.shape[-1]
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)
    w = min_bin + (1 - min_bin * k) * F.softmax(w, -1)  # bin widths, sum 1
    h = min_bin + (1 - min_bin * k) * F.softmax(h, -1)
    cw = F.pad(torch.cumsum(w, -1), (1, 0)) * 2 * bound - bound  # knots x_0 = -B .. x_K = B
    ch = F.pad(torch.cumsum(h, -1), (1, 0)) * 2 * bound - bound
    cw[..., -1] = bound
    ch[..., -1] = bound
    # slopes at the knots: 1 at +-B, and exactly 1 inside for d = 0, so a zero-initialised conditioner is the identity
    dk = F.pad(min_deriv + F.softplus(d + math.log(math.expm1(1 - min_deriv))), (1, 1), value=1.0)
    knots = ch if inverse else cw
    idx = (torch.searchsorted(knots[..., 1:-1].contiguous(), xc[..., None].contiguous(), right=True))
    x_k, y_k = cw.gather(-1, idx)[..., 0], ch.gather(-1, idx)[..., 0]
    w_k, h_k = (cw.gather(-1, idx + 1)[..., 0] - x_k), (ch.gather(-1, idx + 1)[..., 0] - y_k)
    d0, d1 = dk.gather(-1, idx)[..., 0], dk.gather(-1, idx + 1)[..., 0]
    s = h_k / w_k  # bin slope s_k
    if inverse:  # solve the quadratic a th^2 + b th + c = 0 for th in [0, 1]
        dy = xc - y_k
        a = h_k * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = h_k * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        th = (2 * c) / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
        out = x_k + th * w_k
    else:
        th = (xc - x_k) / w_k
    tt = th * (1 - th)
    denom = s + (d1 + d0 - 2 * s) * tt
    if not inverse:
        out = y_k + h_k * (s * th**2 + d0 * tt) / denom  # y = y_k + h_k [s th^2 + d_k th(1-th)] / denom
    logdet = 2 * torch.log(s) + torch.log(d1 * th**2 + 2 * s * tt + d0 * (1 - th) ** 2) - 2 * torch.log(denom)
    if inverse:
        logdet = -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


class SplineCoupling(nn.Module):
    """Coupling layer whose elementwise map is an RQ spline with parameters NN(m*x)."""

    def __init__(self, mask: Tensor, hidden: int, depth: int, bins: int, bound: float) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.bins, self.bound = bins, bound
        self.net = mlp(mask.numel(), mask.numel() * (3 * bins - 1), hidden, depth)

    def _transform(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        b, dim, k = x.shape[0], x.shape[1], self.bins
        p = self.net(x * self.mask).view(b, dim, 3 * k - 1)
        y, ld = rq_spline(x, p[..., :k], p[..., k:2 * k], p[..., 2 * k:], self.bound, inverse=inverse)
        free = self.mask == 0
        return torch.where(free, y, x), (ld * free).sum(-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(x, inverse=False)

    def inverse(self, y: Tensor) -> Tensor:
        return self._transform(y, inverse=True)[0]
# --8<-- [end:spline]


@dataclass
class FlowConfig(FamilyConfig):
    """A coupling flow; defaults sized for a 2-core CPU (toys: under a minute)."""

    data: str = "moons"
    coupling: str = "spline"  # "affine" (RealNVP) or "spline" (rational-quadratic, Durkan et al. 2019)
    layers: int = 6  # coupling layers, masks alternating
    hidden: int = 64  # width of each conditioner MLP
    depth: int = 2  # hidden layers per conditioner
    scale_clamp: float = 3.0  # affine: log-scale s in (-c, c)
    bins: int = 32  # spline: K bins
    tail_bound: float = 4.0  # spline: acts on [-B, B] of the standardised data, identity outside
    logit_alpha: float = 0.05  # digits: y -> logit(a + (1 - 2a) y)
    dequantization: str = "uniform"  # digits: u ~ U[0, 1) ("uniform") or u ~ q(u | x) ("variational", Ho et al. 2019)
    dequant_hidden: int = 128  # variational: width of the network that gives q(u | x) its mean and scale

    RANGES = {"logit_alpha": (0.0, 0.49)}
    CHOICES = {"coupling": ("affine", "spline"), "dequantization": ("uniform", "variational")}

    @property
    def variant(self) -> str:
        """The couplings, e.g. ``spline couplings`` (a RealNVP class may run either kind)."""
        return f"{self.coupling} couplings"

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Digits: eight spline couplings of width 128 with 8 bins on the 64 logits.

        Measured against RealNVP's affine couplings (8 layers, width 256) under the benchmark's budget: the
        affine flow overfits the 1,000 training digits within a few hundred steps; the splines, more
        expressive per layer with fewer weights per output, reach a lower validation NLL before they do
        (``benchmarks/config_trials.py flow digits``; the benchmarks page has the recorded figures).
        """
        return {"coupling": "spline", "layers": 8, "hidden": 128, "bins": 8} if data == "digits" else {}

    def recipe(self) -> dict[str, Any]:
        """Batch size, learning rate, an EMA of the weights, early stopping on the val split."""
        if self.data == "digits":
            return {"batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "eval_every": 50, "patience": 4}
        return {"batch_size": 256, "lr": 3e-3, "ema_decay": 0.995, "eval_every": 250, "patience": 8}


def _masks(config: FlowConfig, dims: int) -> list[Tensor]:
    if dims == 2:
        base = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])]
    else:  # 8x8: checkerboard, its complement, left half, right half
        r, c = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
        checker = ((r + c) % 2).float().flatten()
        left = (c < 4).float().flatten()
        base = [checker, 1 - checker, left, 1 - left]
    return [base[i % len(base)] for i in range(config.layers)]


class CouplingFlow(DensityModule):
    """A stack of coupling layers on R^D with a standard Gaussian base; exact log p and sampling. A subclass maps
    data to R^D and back (``log_likelihood``, ``sample``)."""

    def __init__(self, config: FlowConfig, dims: int) -> None:
        super().__init__()
        self.config = cfg = config
        self.dims = dims
        layers: list[nn.Module] = []
        for m in _masks(cfg, dims):
            if cfg.coupling == "affine":
                layers.append(AffineCoupling(m, cfg.hidden, cfg.depth, cfg.scale_clamp))
            else:
                layers.append(SplineCoupling(m, cfg.hidden, cfg.depth, cfg.bins, cfg.tail_bound))
        self.layers = nn.ModuleList(layers)

    # --8<-- [start:flow]
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) (B, D) and log|det df/dx| (B,), through every coupling layer."""
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld  # log-dets of a composition add
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        """x = f^{-1}(z), the layers inverted in reverse order."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob_continuous(self, v: Tensor) -> Tensor:
        """log p(v) = log N(f(v); 0, I) + log|det df/dv| for v (B, D), nats."""
        z, logdet = self(v)
        return log_normal(z) + logdet
    # --8<-- [end:flow]

    def base_sample(self, n: int, temperature: float, generator: torch.Generator | None) -> Tensor:
        """v = f^{-1}(T z), z ~ N(0, I): (n, D)."""
        device = next(self.parameters()).device
        return self.inverse(temperature * torch.randn(n, self.dims, generator=generator, device=device))


class PointFlow(CouplingFlow):
    """A flow on 2-D points: standardised by the training data's mean and scale, then the coupling layers."""

    bound = Bound.DIFFERENTIAL

    def __init__(self, config: FlowConfig) -> None:
        super().__init__(config, 2)
        self.standardize = Standardize(2)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Exact log p(x) in nats, (B,), for points x (B, 2): log p(v) + log|dv/dx| with v standardised."""
        gdata.check_points(x)
        v, logdet = self.standardize(x)
        return self.log_prob_continuous(v) + logdet

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """x = mean + std * f^{-1}(T z), z ~ N(0, I): points (n, 2)."""
        return self.standardize.inverse(self.base_sample(n, temperature, generator))


# --8<-- [start:digits]
def to_logit(y: Tensor, a: float) -> tuple[Tensor, Tensor]:
    """v = logit(a + (1 - 2a) y) and log|dv/dy| per row, for y (B, D) in [0, 1)."""
    s = a + (1 - 2 * a) * y
    v = torch.log(s) - torch.log1p(-s)
    return v, (math.log(1 - 2 * a) - torch.log(s) - torch.log1p(-s)).sum(-1)


def from_logit(v: Tensor, a: float) -> Tensor:
    """The inverse of ``to_logit``: y = (sigmoid(v) - a) / (1 - 2a), clamped into [0, 1)."""
    return ((torch.sigmoid(v) - a) / (1 - 2 * a)).clamp(0, 1 - 1e-6)


class ImageFlow(CouplingFlow):
    """A coupling flow on dequantised digits: y = (x + u) / 17, v = logit(a + (1 - 2a) y), flow on v in R^64."""

    bound = Bound.DEQUANTIZED

    def __init__(self, config: FlowConfig) -> None:
        super().__init__(config, gdata.DIGIT_DIMS)
        if config.dequantization == "variational":  # x (B, 64) -> mean and log-scale of q's logit, (B, 128)
            self.dequantizer = mlp(gdata.DIGIT_DIMS, 2 * gdata.DIGIT_DIMS, config.dequant_hidden, 2)

    def dequantize(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """u in (0, 1)^64 for levels x (B, 64), and log q(u | x) (B,): zero for the uniform u ~ U[0, 1)^64.

        variational: u = sigmoid(m(x) + s(x) eps), eps ~ N(0, I), a logistic-normal q (Ho et al., 2019, Flow++,
        with one conditional layer), log q(u | x) = log N(eps) - sum log s - sum log(u (1 - u)).
        """
        if self.config.dequantization == "uniform":
            u = torch.rand(x.shape, generator=generator, device=x.device)  # as data.dequantize draws it
            return u, torch.zeros(x.shape[0], device=x.device)
        dtype = self.dequantizer[0].weight.dtype
        mean, log_scale = self.dequantizer(2 * x.to(dtype) / (gdata.DIGIT_LEVELS - 1) - 1).chunk(2, dim=-1)
        log_scale = log_scale.clamp(-6.0, 2.0)
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)  # (B, 64)
        z = mean + log_scale.exp() * eps
        log_q = log_normal(eps) - log_scale.sum(-1) - (F.logsigmoid(z) + F.logsigmoid(-z)).sum(-1)
        return torch.sigmoid(z), log_q

    def log_likelihood(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x int (B, 1, 8, 8) -> a one-draw estimate (B,) of the bound log P(x) >= E_q[log p_Y(y) - log q(u | x)]
        - 64 log 17, y = (x + u) / 17, in nats of the discrete space (q uniform: log q = 0)."""
        gdata.check_digits(x)
        levels = x.flatten(1)  # (B, 64)
        u, log_q = self.dequantize(levels, generator)
        y = (levels.float() + u) / gdata.DIGIT_LEVELS  # (B, 64) in [0, 1)
        v, logdet = to_logit(y, self.config.logit_alpha)
        log_py = self.log_prob_continuous(v) + logdet  # log p_Y(y) = log p_V(v) + log|dv/dy|
        return -dequantized_nll(-(log_py - log_q), dims=gdata.DIGIT_DIMS, levels=gdata.DIGIT_LEVELS)
    # --8<-- [end:digits]

    @evaluating
    def log_prob(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The dequantised bound of ``log_likelihood`` in eval mode; ``generator`` draws u."""
        return self.log_likelihood(x, generator)

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Digits int64 (n, 1, 8, 8): v = f^{-1}(T z), y = (sigmoid(v) - a) / (1 - 2a), x = quantize(y)."""
        v = self.base_sample(n, temperature, generator)  # (n, 64)
        return gdata.quantize(from_logit(v, self.config.logit_alpha)).view(n, *gdata.DIGIT_SHAPE)


config_for = FlowConfig.for_data


def build(data: str, /, **overrides: object) -> CouplingFlow:
    """A flow for "digits" (:class:`ImageFlow`, 8 spline couplings of width 128) or a 2-D toy
    (:class:`PointFlow`, 6 spline couplings), the config's defaults for ``data`` replaced by ``overrides``."""
    config = config_for(data, **overrides)
    return ImageFlow(config) if config.image else PointFlow(config)
