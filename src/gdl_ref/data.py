"""Data: the embedded digits split, 2-D toys with known entropy, dequantisation, IDX loaders.

* **Digits** -- scikit-learn's ``load_digits`` (1,797 images, 8x8, 17 grey levels 0..16), split in its
  fixed order: rows 0-999 train, 1000-1349 validation, 1350-1796 test (447 images). No download.
* **Dequantisation** -- a continuous density p_y on y = (x + u) / 17, u ~ U[0, 1)^64, bounds the discrete
  likelihood: -log P(x) <= E_u[-log p_y(y)] + 64 log 17 (Theis, van den Oord & Bethge, 2016,
  "A note on the evaluation of generative models", section 3.1).
* **Levels as numbers** -- levels 0..16 to [-1, 1] and back (bin centres, or dequantised), and the
  checks that a batch holds digits or 2-D points.
* **2-D toys** -- ``moons``, ``8gaussians``, ``checkerboard``, ``ring``: each a sampler from a seed, its
  true log density, and its differential entropy H = -E[log p(X)] in nats (exact where closed-form,
  otherwise a converged numerical integral). The paired mean over test points of log p(x) - log q(x)
  estimates a model q's KL divergence from the truth (``gdl_ref.evaluate``).
* **One value a data set** -- ``dataset(name, move=None)`` makes a frozen :class:`Dataset` once a process:
  the three splits (moved, for a moved toy), the digits' labels, the true log-density and entropy where
  known, fresh reference draws of a toy, and the map back from a moved toy.
* **IDX files** -- MNIST and Fashion-MNIST read from a local folder or a cache folder (downloaded only
  when asked), with magic-number, size and checksum checks and errors naming the file.

Reference: Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 1 (data and p_data).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DIGIT_LEVELS", "DIGIT_SHAPE", "DIGIT_DIMS", "DIGIT_SPLITS", "TOY_NAMES", "TOY_SPLITS",
    "Entropy", "digits", "dequantize", "quantize", "levels_to_signed", "signed_to_levels", "dequantize_signed",
    "quantize_signed", "check_digits", "check_points", "toy", "toy_log_prob", "toy_entropy",
    "mc_entropy", "quadrature_entropy", "load", "cache_dir", "IDXError", "read_idx", "file_sha256", "load_mnist",
    "MNIST_FILES", "Move", "MOVES", "DATASETS", "Dataset", "dataset",
]

# ---------------------------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------------------------

DIGIT_LEVELS = 17  # grey levels 0..16
DIGIT_SHAPE = (1, 8, 8)  # (C, H, W)
DIGIT_DIMS = 64
DIGIT_SPLITS = {"train": (0, 1000), "val": (1000, 1350), "test": (1350, 1797)}  # row ranges


@functools.lru_cache(maxsize=1)
def _all_digits() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images.astype(np.int64)).reshape(-1, *DIGIT_SHAPE)  # (1797, 1, 8, 8)
    labels = torch.as_tensor(bunch.target.astype(np.int64))  # (1797,)
    return images, labels


def digits(split: str = "train") -> tuple[Tensor, Tensor]:
    """The digits split: images int64 (N, 1, 8, 8) in 0..16 and labels int64 (N,).

    Rows of ``sklearn.datasets.load_digits`` in its fixed order: train 0-999, val 1000-1349,
    test 1350-1796.
    """
    if split not in DIGIT_SPLITS:
        raise ValueError(f"unknown digits split {split!r}; valid splits: {', '.join(DIGIT_SPLITS)}")
    lo, hi = DIGIT_SPLITS[split]
    images, labels = _all_digits()
    return images[lo:hi].clone(), labels[lo:hi].clone()


# --8<-- [start:dequantize]
def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """y = (x + u) / 17 with u ~ U[0, 1) per pixel: integer levels 0..16 -> floats in [0, 1).

    A density p_y on [0, 1)^64 gives the discrete bound -log P(x) <= -log p_y(y) + 64 log 17.
    """
    if x.dtype.is_floating_point:
        raise ValueError(f"dequantize expects integer levels 0..{DIGIT_LEVELS - 1}, got dtype {x.dtype}")
    u = torch.rand(x.shape, generator=generator, device=x.device)  # u ~ U[0, 1)
    return (x.float() + u) / DIGIT_LEVELS  # y = (x + u) / 17


def quantize(y: Tensor) -> Tensor:
    """x = clamp(floor(17 y), 0, 16): continuous samples back to integer levels (int64)."""
    return torch.floor(y * DIGIT_LEVELS).clamp(0, DIGIT_LEVELS - 1).long()
# --8<-- [end:dequantize]


# --8<-- [start:levels]
def levels_to_signed(x: Tensor) -> Tensor:
    """Levels 0..16 -> the centres of 17 equal bins of [-1, 1]: v = 2x / 16 - 1 (float)."""
    return 2 * x.float() / (DIGIT_LEVELS - 1) - 1


def signed_to_levels(v: Tensor) -> Tensor:
    """The inverse of ``levels_to_signed`` for any v: the level whose bin centre is nearest, int64 0..16."""
    top = DIGIT_LEVELS - 1
    return ((v + 1) * top / 2).round().clamp(0, top).long()


def dequantize_signed(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Levels 0..16 -> dequantised floats 2y - 1 in [-1, 1), y = (x + u) / 17: the input of a critic or an energy."""
    return dequantize(x, generator) * 2 - 1


def quantize_signed(v: Tensor) -> Tensor:
    """The inverse of ``dequantize_signed``: floats in [-1, 1] -> levels 0..16, x = quantize((v + 1) / 2)."""
    return quantize((v + 1) / 2)


def check_digits(x: Tensor, name: str = "x", shape: tuple[int, ...] = DIGIT_SHAPE, levels: int = DIGIT_LEVELS) -> None:
    """ValueError naming ``name`` unless x is integer levels 0..levels-1 of shape (B, *shape) (digits by default)."""
    want = f"(B, {', '.join(map(str, shape))})"
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != tuple(shape) or x.dtype.is_floating_point:
        raise ValueError(f"expected {name} of shape {want}, got {tuple(x.shape)} of dtype {x.dtype} "
                         f"(integer levels 0..{levels - 1} needed)")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > levels - 1):
        raise ValueError(f"expected {name} in levels 0..{levels - 1}; got {int(x.min())}..{int(x.max())}")


def check_points(x: Tensor, dims: int = 2, name: str = "x") -> None:
    """ValueError naming ``name`` unless x is floating-point points of shape (B, dims)."""
    if x.ndim != 2 or x.shape[1] != dims or not x.dtype.is_floating_point:
        raise ValueError(f"expected {name} of shape (B, {dims}), got {tuple(x.shape)} of dtype {x.dtype} "
                         "(floating-point points needed)")
# --8<-- [end:levels]
# --8<-- [end:dequantize]


# ---------------------------------------------------------------------------------------------
# 2-D toys with known density
# ---------------------------------------------------------------------------------------------

TOY_NAMES = ("moons", "8gaussians", "checkerboard", "ring")
# split -> (n, seed). The toys cost nothing to draw, so the train split is large: with 4,000 points a
# flow overfits within seconds and stops 0.1 nats above the entropy; with 100,000 it is capacity that limits.
TOY_SPLITS = {"train": (100_000, 0), "val": (1000, 1), "test": (2000, 2)}

MOONS_NOISE = 0.1  # sigma of the Gaussian noise added to each moon
MOONS_CENTER = (0.5, 0.25)  # mean of the noiseless two moons, subtracted so the data is centred
GAUSS8_RADIUS = 2.0  # the 8 means lie on a circle of this radius
GAUSS8_STD = 0.2  # sigma of each of the 8 components
RING_RADIUS = 1.5
RING_NOISE = 0.1
CHECKER_AREA = 8.0  # 8 unit squares of the 4x4 board on [-2, 2]^2

ENTROPY_SAMPLES = 40_000  # Monte-Carlo sample size of mc_entropy, the independent check of toy_entropy
ENTROPY_SEED = 12345  # its seed (fixed: mc_entropy is deterministic)
# Boxes ((x0, x1), (y0, y1)) that hold every toy's mass but ~e^-30 (at least 8 noise sigmas of margin),
# and the starting panel width of quadrature_entropy (two noise sigmas for moons and ring, one for 8gaussians).
ENTROPY_BOXES = {
    "moons": ((-1.5 - 8 * MOONS_NOISE, 1.5 + 8 * MOONS_NOISE), (-0.75 - 8 * MOONS_NOISE, 0.75 + 8 * MOONS_NOISE)),
    "8gaussians": ((-GAUSS8_RADIUS - 8 * GAUSS8_STD, GAUSS8_RADIUS + 8 * GAUSS8_STD),) * 2,
    "ring": ((-RING_RADIUS - 8 * RING_NOISE, RING_RADIUS + 8 * RING_NOISE),) * 2,
}
ENTROPY_PANEL_WIDTH = 0.2


class Entropy(NamedTuple):
    """Differential entropy in nats and its error: 0 and ``exact`` for a closed form, the numerical error of a
    converged integral (``quadrature_entropy``), or the standard error of a Monte-Carlo estimate (``mc_entropy``)."""

    nats: float
    stderr: float
    exact: bool


def _check_toy(name: str) -> None:
    if name not in TOY_NAMES:
        raise ValueError(f"unknown toy data set {name!r}; valid names: {', '.join(TOY_NAMES)}")


def _moon_means(t: Tensor) -> tuple[Tensor, Tensor]:
    """Means of the two noiseless moons at arc parameter t in [0, pi]: (..., 2) each."""
    cx, cy = MOONS_CENTER
    upper = torch.stack([torch.cos(t) - cx, torch.sin(t) - cy], -1)  # (cos t, sin t)
    lower = torch.stack([1 - torch.cos(t) - cx, 0.5 - torch.sin(t) - cy], -1)  # (1 - cos t, 1/2 - sin t)
    return upper, lower


def _gauss8_means(dtype: torch.dtype = torch.float64) -> Tensor:
    angles = torch.arange(8, dtype=dtype) * (2 * math.pi / 8)
    return GAUSS8_RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], -1)  # (8, 2)


def toy(name: str, n: int, seed: int = 0) -> Tensor:
    """n points (n, 2) float32 of the toy ``name``, drawn from ``torch.Generator().manual_seed(seed)``."""
    _check_toy(name)
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    if name == "moons":
        t = torch.rand(n, generator=g, dtype=f64) * math.pi  # t ~ U[0, pi]
        which = torch.randint(0, 2, (n,), generator=g)  # which moon, 1/2 each
        upper, lower = _moon_means(t)
        x = torch.where(which[:, None] == 0, upper, lower)
        x = x + MOONS_NOISE * torch.randn(n, 2, generator=g, dtype=f64)
    elif name == "8gaussians":
        k = torch.randint(0, 8, (n,), generator=g)
        x = _gauss8_means()[k] + GAUSS8_STD * torch.randn(n, 2, generator=g, dtype=f64)
    elif name == "checkerboard":
        x1 = torch.rand(n, generator=g, dtype=f64) * 4 - 2  # column position, U[-2, 2]
        col = torch.floor(x1)
        # two rows r in {-2,..,1} with (col + r) even per column; pick one at random
        base = torch.remainder(col, 2) - 2  # -2 if col even else -1
        row = base + 2 * torch.randint(0, 2, (n,), generator=g).to(f64)
        x2 = row + torch.rand(n, generator=g, dtype=f64)
        x = torch.stack([x1, x2], -1)
    else:  # ring
        theta = torch.rand(n, generator=g, dtype=f64) * 2 * math.pi
        circle = RING_RADIUS * torch.stack([torch.cos(theta), torch.sin(theta)], -1)
        x = circle + RING_NOISE * torch.randn(n, 2, generator=g, dtype=f64)
    return x.float()


# --8<-- [start:toy_log_prob]
# Composite Gauss-Legendre rule on [0, pi] for the moons' arc parameter t: 16 panels x 8 nodes
# (agrees with a 64-panel rule to ~1e-11 nats).
def _arc_rule(panels: int = 16, nodes: int = 8) -> tuple[Tensor, Tensor]:
    """Nodes t_k (K,) and log weights log w_k (K,) with sum_k w_k f(t_k) ~ (1/pi) int_0^pi f(t) dt."""
    gx, gw = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(0.0, math.pi, panels + 1)
    t = (edges[:-1, None] + edges[1:, None]) / 2 + (edges[1:, None] - edges[:-1, None]) / 2 * gx
    w = np.tile(gw, panels) / (2 * panels)  # panel half-width (pi / 2P) times the 1/pi of U[0, pi]
    return torch.tensor(t.ravel()), torch.tensor(np.log(w))


_T_NODES, _T_LOGW = _arc_rule()


def _log_normal2(x: Tensor, mean: Tensor, std: float) -> Tensor:
    """log N(x; mean, std^2 I) in 2-D, broadcast over leading dims."""
    sq = ((x - mean) ** 2).sum(-1)
    return -sq / (2 * std**2) - math.log(2 * math.pi * std**2)


def toy_log_prob(name: str, x: Tensor) -> Tensor:
    """True log density log p(x) in nats for points x (n, 2); returns (n,).

    moons:        p(x) = 1/2 sum_moon (1/pi) int_0^pi N(x; m_moon(t), s^2 I) dt   (quadrature over t)
    8gaussians:   p(x) = 1/8 sum_k N(x; mu_k, s^2 I)
    checkerboard: p(x) = 1/8 on the 8 dark unit squares of [-2, 2]^2, else 0
    ring:         p(x) = 1/(2 pi s^2) exp(-(r^2 + R^2) / (2 s^2)) I0(R r / s^2),  r = |x|
    """
    _check_toy(name)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"expected x of shape (n, 2), got {tuple(x.shape)}")
    z = x.detach().to("cpu", torch.float64)
    if name == "moons":
        out = []
        for chunk in z.split(2048):
            upper, lower = _moon_means(_T_NODES)  # (T, 2) each
            lu = torch.logsumexp(_log_normal2(chunk[:, None], upper, MOONS_NOISE) + _T_LOGW, 1)
            ll = torch.logsumexp(_log_normal2(chunk[:, None], lower, MOONS_NOISE) + _T_LOGW, 1)
            out.append(torch.logaddexp(lu, ll) - math.log(2))  # mixture weight 1/2 per moon
        lp = torch.cat(out) if out else z.new_zeros(0)
    elif name == "8gaussians":
        lp = torch.logsumexp(_log_normal2(z[:, None], _gauss8_means(), GAUSS8_STD), 1) - math.log(8)
    elif name == "checkerboard":
        inside = (z.abs() <= 2).all(1) & (torch.remainder(torch.floor(z).sum(1), 2) == 0)
        lp = torch.where(inside, -math.log(CHECKER_AREA), -math.inf)
    else:  # ring: circle of radius R convolved with N(0, s^2 I); log I0(z) = log i0e(z) + z
        r = z.norm(dim=1)
        s2 = RING_NOISE**2
        lp = (-math.log(2 * math.pi * s2) - (r - RING_RADIUS) ** 2 / (2 * s2)
              + torch.log(torch.special.i0e(RING_RADIUS * r / s2)))
    return lp.to(x.dtype if x.dtype.is_floating_point else torch.float32).to(x.device)
# --8<-- [end:toy_log_prob]


# --8<-- [start:entropy]
def mc_entropy(name: str, n: int = ENTROPY_SAMPLES, seed: int = ENTROPY_SEED) -> Entropy:
    """Monte-Carlo entropy H = -E[log p(X)] ~ -(1/n) sum_i log p(x_i), x_i ~ p, stderr = sd / sqrt(n)."""
    x = toy(name, n, seed=seed).double()
    nll = -toy_log_prob(name, x)  # (n,)
    return Entropy(float(nll.mean()), float(nll.std() / math.sqrt(n)), False)


def _gauss_legendre_grid(lo: float, hi: float, panels: int, nodes: int = 8) -> tuple[Tensor, Tensor]:
    """Nodes (K,) and weights (K,) of the composite Gauss-Legendre rule on [lo, hi] (K = panels * nodes)."""
    gx, gw = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(lo, hi, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2  # (P, 1)
    x = (edges[:-1, None] + edges[1:, None]) / 2 + half * gx
    return torch.tensor(x.ravel()), torch.tensor((half * gw).ravel())


def _entropy_on_grid(name: str, panel_width: float) -> float:
    """H = -int p log p dx over the toy's box, by a tensor-product composite Gauss-Legendre rule."""
    (x0, x1), (y0, y1) = ENTROPY_BOXES[name]
    xs, wx = _gauss_legendre_grid(x0, x1, max(1, round((x1 - x0) / panel_width)))
    ys, wy = _gauss_legendre_grid(y0, y1, max(1, round((y1 - y0) / panel_width)))
    total = 0.0
    for x_chunk, w_chunk in zip(xs.split(64), wx.split(64)):
        grid = torch.stack(torch.broadcast_tensors(x_chunk[:, None], ys[None, :]), -1)  # (64, Ky, 2)
        lp = toy_log_prob(name, grid.reshape(-1, 2)).reshape(grid.shape[:2])  # (64, Ky)
        plogp = torch.where(lp > -700, lp.exp() * lp, torch.zeros_like(lp))  # p log p -> 0 as p -> 0
        total += float((w_chunk[:, None] * wy[None, :] * plogp).sum())
    return -total


def quadrature_entropy(name: str, tol: float = 1e-7) -> Entropy:
    """H = -int p log p by composite Gauss-Legendre on a box holding all but ~e^-30 of the mass.

    The panels are halved until H changes by less than ``tol``; ``stderr`` holds that last change
    (a numerical error estimate, not a sampling error).
    """
    _check_toy(name)
    if name not in ENTROPY_BOXES:
        raise ValueError(f"{name!r} has a closed-form entropy; quadrature covers {', '.join(ENTROPY_BOXES)}")
    width = ENTROPY_PANEL_WIDTH
    h = _entropy_on_grid(name, width)
    while True:
        width /= 2
        finer = _entropy_on_grid(name, width)
        if abs(finer - h) < tol:
            return Entropy(finer, abs(finer - h), False)
        h = finer


# quadrature_entropy(name) per toy, (H, its error bound), stored so that toy_entropy costs nothing; each entry
# equals a fresh quadrature_entropy(name) to 1e-9.
QUADRATURE_ENTROPY_TABLE = {
    "moons": (1.007584834846211, 3.589208930065979e-09),
    "8gaussians": (1.698061203121816, 2.220446049250313e-16),
    "ring": (1.358578248552097, 6.707967514785196e-13),
}


def toy_entropy(name: str) -> Entropy:
    """True differential entropy of a toy in nats.

    checkerboard: uniform on area 8, so H = log 8 exactly. The others: ``quadrature_entropy(name)``, a
    converged numerical integral, as stored in QUADRATURE_ENTROPY_TABLE (``stderr``: its numerical error).
    """
    _check_toy(name)
    if name == "checkerboard":
        return Entropy(math.log(CHECKER_AREA), 0.0, True)
    return Entropy(*QUADRATURE_ENTROPY_TABLE[name], False)
# --8<-- [end:entropy]


@dataclass(frozen=True)
class Move:
    """An affine move of a 2-D toy, x -> scale * x + shift (the same shift on both axes).

    The moved toy has density p(x) = p_toy((x - shift) / scale) / scale^2, so its entropy is the toy's
    plus 2 log scale and KL(p || q) of any q moved the same way is unchanged (KL is invariant under an
    invertible map; Cover & Thomas, *Elements of Information Theory*, 2nd ed., 2006, sections 8.6 and 2.3).
    A model that standardises on its training data should fit a moved toy exactly as well as the toy.
    """

    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0 and math.isfinite(self.shift)):
            raise ValueError(f"a move needs a finite scale > 0 and a finite shift, got scale={self.scale}, "
                             f"shift={self.shift}")

    def apply(self, x: Tensor) -> Tensor:
        """Toy points (n, 2) -> moved points (n, 2)."""
        return x * self.scale + self.shift

    def undo(self, y: Tensor) -> Tensor:
        """Moved points (n, 2) -> toy points (n, 2)."""
        return (y - self.shift) / self.scale

    def log_prob(self, name: str, y: Tensor) -> Tensor:
        """log p(y) of the moved toy ``name`` at moved points y (n, 2): log p_toy(undo(y)) - 2 log scale; (n,)."""
        return toy_log_prob(name, self.undo(y)) - 2 * math.log(self.scale)

    def entropy(self, name: str) -> float:
        """H of the moved toy in nats: H(toy) + 2 log scale."""
        return toy_entropy(name).nats + 2 * math.log(self.scale)

    def label(self, name: str) -> str:
        """'moons', 'moons ×10', 'moons ×0.1', 'moons +5': the toy's name and what was done to it."""
        parts = [name]
        if self.scale != 1.0:
            parts.append(f"×{self.scale:g}")
        if self.shift != 0.0:
            parts.append(f"{self.shift:+g}")
        return " ".join(parts)


MOVES = (Move(0.1), Move(10.0), Move(1.0, 5.0))  # each toy scaled by 0.1, by 10, and shifted by 5


# ---------------------------------------------------------------------------------------------
# One value a data set
# ---------------------------------------------------------------------------------------------

DATASETS = ("digits", *TOY_NAMES)  # every data set a family trains on


def _check_toy_or_digits(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set as every layer sees it: made once by :func:`dataset`, never changed.

    ``train``, ``val``, ``test``: digits int64 (N, 1, 8, 8) in 0..16; a toy float32 (N, 2), moved by
    ``move`` when there is one. Treat the tensors as read-only: they are shared by every caller.
    """

    name: str  # "digits" or a toy of TOY_NAMES
    move: Move | None
    train: Tensor
    val: Tensor
    test: Tensor
    labels: dict[str, Tensor] | None = None  # digits: the class 0..9 of each image, by split

    @property
    def images(self) -> bool:
        """True for the digits (discrete images), False for a 2-D toy (continuous points)."""
        return self.name == "digits"

    @property
    def label(self) -> str:
        """The name a table gives it: 'digits', 'moons', 'moons ×10'."""
        return self.move.label(self.name) if self.move else self.name

    def split(self, which: str) -> Tensor:
        """``train``, ``val`` or ``test``."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; valid splits: train, val, test")
        return getattr(self, which)

    def log_prob(self, x: Tensor) -> Tensor:
        """The true log-density log p(x) at points x (n, 2) of this (moved) toy; (n,), float64."""
        if self.images:
            raise ValueError("digits: the true density is unknown; only a 2-D toy has one")
        x = x.double()
        return self.move.log_prob(self.name, x) if self.move else toy_log_prob(self.name, x)

    @property
    def entropy(self) -> float | None:
        """H(p) in nats of this (moved) toy; None for the digits."""
        if self.images:
            return None
        return self.move.entropy(self.name) if self.move else toy_entropy(self.name).nats

    def unmove(self, x: Tensor) -> Tensor:
        """Points (n, 2) of this moved toy back in the toy's own frame (identity without a move)."""
        return self.move.undo(x) if self.move else x

    def unmoved(self) -> Dataset:
        """The toy itself, without the move (this value when there is none)."""
        return dataset(self.name) if self.move else self

    def fresh(self, n: int, seed: int) -> Tensor:
        """n new points (n, 2) of the toy in its own frame, from ``seed`` (reference draws for the distances)."""
        if self.images:
            raise ValueError("digits: there are no fresh draws; the test split is the reference")
        return toy(self.name, n, seed=seed)


@functools.lru_cache(maxsize=None)
def dataset(name: str, move: Move | None = None) -> Dataset:
    """The data set ``name`` (moved by ``move``, a toy only), made once a process.

    digits: the rows of ``digits(split)``; a toy: ``toy(name, n, seed)`` with (n, seed) from TOY_SPLITS
    (train 100,000 points seed 0, val 1,000 seed 1, test 2,000 seed 2).
    """
    _check_toy_or_digits(name)
    if name == "digits":
        if move is not None:
            raise ValueError("move: only a 2-D toy can be moved, not digits")
        parts = {split: digits(split) for split in DIGIT_SPLITS}
        return Dataset(name, None, *(parts[s][0] for s in ("train", "val", "test")),
                       labels={s: parts[s][1] for s in parts})
    splits = [toy(name, *TOY_SPLITS[s]) for s in ("train", "val", "test")]
    return Dataset(name, move, *(move.apply(x) if move else x for x in splits))


def load(name: str, split: str = "train") -> Tensor:
    """One split of a data set as ``fit`` takes it: a copy of ``dataset(name).split(split)``, the caller's own."""
    return dataset(name).split(split).clone()


# ---------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """The cache folder: $GDL_REF_CACHE, else ~/.cache/gdl-ref."""
    return Path(os.environ.get("GDL_REF_CACHE") or Path.home() / ".cache" / "gdl-ref")


class IDXError(ValueError):
    """A malformed IDX file (bad magic, truncated, wrong shape, checksum mismatch)."""


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
}
# MD5 of the official .gz files as published with the data sets (and used by torchvision).
MNIST_FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
_MNIST_SPLITS = {"train": ("train", 60_000), "test": ("t10k", 10_000)}


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file (to pin a local copy: ``load_mnist(..., sha256={name: digest})``)."""
    return _digest(Path(path), "sha256")


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


IDX_MAX_BYTES = 2**30  # the most data one IDX file may declare (1 GiB); MNIST's train images need 47 MB


def read_idx(path: str | Path, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into an array, checking magic number and size.

    Layout: 2 zero bytes, a type byte (0x08 = uint8, ...), a byte with the number of dimensions d,
    d big-endian uint32 sizes, then the data in C order, nothing after it. The header is read
    first and a shape needing more than ``max_bytes`` is refused before any data is read; then
    exactly that many bytes are read, in a stream, and one more byte must not exist. So a small
    file that decompresses to gigabytes costs at most ``max_bytes`` of memory, never the whole.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            return _read_idx_stream(fh, path, max_bytes)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such IDX file") from None
    except (OSError, EOFError, zlib.error) as err:  # corrupt or truncated gzip stream, bad deflate data
        raise IDXError(f"{path}: cannot decompress ({err})") from None


def _read_exactly(fh, n: int) -> bytes:  # type: ignore[no-untyped-def]
    """Up to ``n`` bytes from a stream, in blocks (a gzip stream's ``read(n)`` may return fewer)."""
    chunks, left = [], n
    while left:
        block = fh.read(min(left, 1 << 24))
        if not block:
            break
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def _read_idx_stream(fh, path: Path, max_bytes: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    magic = _read_exactly(fh, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise IDXError(f"{path}: bad magic number {magic.hex() or '(empty)'}; expected 0000 + type "
                       f"byte in {{{', '.join(f'{t:02x}' for t in _IDX_DTYPES)}}} + ndim")
    ndim = magic[3]
    dims = _read_exactly(fh, 4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise IDXError(f"{path}: header truncated or ndim={ndim} invalid")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a product past 2**63 cannot wrap around
    if expected > max_bytes:
        raise IDXError(f"{path}: header shape {shape} needs {expected:,} data bytes, over the limit of "
                       f"{max_bytes:,} (read_idx(max_bytes=...) raises it); refused before reading the data")
    body = _read_exactly(fh, expected)
    if len(body) < expected:
        raise IDXError(f"{path}: truncated: header shape {shape} needs {expected} data bytes, file has {len(body)}")
    if fh.read(1):
        raise IDXError(f"{path}: has trailing bytes: header shape {shape} needs {expected} data bytes, "
                       f"and more follow")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _fetch(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as out:
            out.write(resp.read())
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not download {dest.name} from {url} ({err}); offline? place the file in "
                      f"{dest.parent} by hand") from None
    tmp.replace(dest)


def _locate(name: str, root: Path, url: str, download: bool) -> Path:
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    if not download:
        raise FileNotFoundError(f"{root / name} not found; put the file there (from {url}{name}) or pass "
                                f"download=True when online")
    _fetch(url + name, root / name)
    return root / name


def load_mnist(split: str = "train", *, kind: str = "mnist", root: str | Path | None = None,
               download: bool = False, sha256: dict[str, str] | None = None) -> tuple[Tensor, Tensor]:
    """MNIST or Fashion-MNIST from IDX files: images uint8 (N, 1, 28, 28) in 0..255, labels int64 (N,).

    Files are looked up in ``root`` (default ``cache_dir() / kind``) as ``.gz`` or unpacked; with
    ``download=True`` a missing file is fetched there. Each ``.gz`` is checked against the published
    MD5, every file's magic number, shape and label range are checked, and ``sha256`` may pin digests
    of your own copies ({file name: hex digest}).
    """
    if kind not in MNIST_FILES:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(MNIST_FILES)}")
    if split not in _MNIST_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(_MNIST_SPLITS)}")
    root = Path(root) if root is not None else cache_dir() / kind
    prefix, count = _MNIST_SPLITS[split]
    arrays, paths = [], []
    for part, magic_ndim in (("images-idx3-ubyte.gz", 3), ("labels-idx1-ubyte.gz", 1)):
        name = f"{prefix}-{part}"
        path = _locate(name, root, MNIST_URLS[kind], download)
        if path.suffix == ".gz" and _digest(path, "md5") != MNIST_FILES[kind][name]:
            raise IDXError(f"{path}: MD5 {_digest(path, 'md5')} differs from the published "
                           f"{MNIST_FILES[kind][name]}; delete it and fetch it again")
        pin = (sha256 or {}).get(path.name)
        if pin is not None and file_sha256(path) != pin:
            raise IDXError(f"{path}: SHA-256 {file_sha256(path)} differs from the pinned {pin}")
        arr = read_idx(path)
        want = (count, 28, 28) if magic_ndim == 3 else (count,)
        if arr.dtype != np.uint8 or arr.shape != want:
            raise IDXError(f"{path}: expected uint8 of shape {want}, got {arr.dtype} {arr.shape}")
        arrays.append(arr)
        paths.append(path)
    images, labels = arrays
    if labels.max() > 9:  # the file actually read: the .gz or its unpacked copy
        raise IDXError(f"{paths[1]}: label {int(labels.max())} outside 0..9")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
