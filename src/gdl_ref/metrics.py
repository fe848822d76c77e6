"""Metrics: distances between samples and data, with no downloads (likelihood units: ``gdl_ref.likelihood``).

* **Sample quality** on digits, from the features of a small classifier trained on the digits train split
  (trained once, seeded, cached): Frechet distance (FD, the FID recipe of Heusel et al., 2017), kernel
  distance (KID: unbiased MMD^2 with the cubic polynomial kernel, Binkowski et al., 2018), MMD with
  Gaussian kernels on pixels (Gretton et al., 2012), and 1-nearest-neighbour two-sample accuracy
  (Lopez-Paz & Oquab, 2017). Floors and standard errors are computed in ``gdl_ref.evaluate``.
* **2-D toys**: MMD and 1-NN against fresh draws; for 8gaussians, modes covered and the share of
  high-quality samples (within 3 sigma of a mode).
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import torch
from torch import Tensor

from gdl_ref import data as gdata

__all__ = ["gaussian_frechet", "frechet_distance", "kernel_distance", "mmd", "one_nn_accuracy",
            "DigitClassifier", "train_digit_classifier", "digit_classifier", "classifier_accuracy",
            "digit_features", "digit_scorer", "sample_quality", "toy_scorer", "toy_sample_quality",
            "kernel_distance_from_gram", "mmd_from_gram", "one_nn_from_distances", "neighbour_order",
            "resample_counts", "polynomial_gram", "gaussian_gram"]




# ---------------------------------------------------------------------------------------------
# Distances between two sets of vectors
# ---------------------------------------------------------------------------------------------

# --8<-- [start:frechet]
def gaussian_frechet(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """Frechet distance of N(mu1, C1) and N(mu2, C2):  |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2).

    The symmetric form C1^1/2 C2 C1^1/2 has the same trace of square root as (C1 C2)^1/2 and an eigh.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    w, v = torch.linalg.eigh(cov1)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T  # C1^1/2
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp_min(0).sqrt().sum()  # tr (C1^1/2 C2 C1^1/2)^1/2
    return float(((mu1 - mu2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * cross)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """FD between feature sets a (N, D) and b (M, D): Gaussians fitted by mean and covariance."""
    a, b = a.double(), b.double()
    return gaussian_frechet(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))
# --8<-- [end:frechet]


# --8<-- [start:kernels]
# Each two-sample statistic reads one matrix over the pooled points x = [a; b] (m + n points) and the counts
# c (m + n,) of each point: ones for the sets themselves, how often a bootstrap resample drew each point
# otherwise. Copies of one point are one point: never paired with, or the nearest neighbour of, themselves.

def resample_counts(m: int, n: int, ia: Tensor | None = None, ib: Tensor | None = None) -> Tensor:
    """Pooled counts (m + n,) of the indices ia into a and ib into b (None: each point once)."""
    ca = torch.ones(m) if ia is None else torch.bincount(ia, minlength=m).double()
    cb = torch.ones(n) if ib is None else torch.bincount(ib, minlength=n).double()
    return torch.cat([ca, cb]).double()


def _weighted_means(k: Tensor, c: Tensor, m: int, leave_out_self: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Count-weighted means of k over the (a, a), (b, b) and (a, b) pairs, optionally without i = j pairs."""
    ca, cb = c.clone(), c.clone()
    ca[m:], cb[:m] = 0, 0
    diag = k.diagonal()

    def within(w: Tensor) -> Tensor:
        total, pairs = w @ k @ w, w.sum() ** 2
        if leave_out_self:
            total, pairs = total - (w**2 * diag).sum(), pairs - (w**2).sum()
        return total / pairs

    return within(ca), within(cb), (ca @ k @ cb) / (ca.sum() * cb.sum())


def kernel_distance_from_gram(k: Tensor, m: int, c: Tensor) -> float:
    """Unbiased MMD^2 from a pooled kernel matrix k (m + n, m + n) and counts c (m + n,).

    MMD^2_u = sum_{i!=j} k(a_i, a_j) / (m(m-1)) + sum_{i!=j} k(b_i, b_j) / (n(n-1)) - 2 mean_ij k(a_i, b_j)
    """
    kaa, kbb, kab = _weighted_means(k.double(), c, m, leave_out_self=True)
    return float(kaa + kbb - 2 * kab)


def mmd_from_gram(k: Tensor, m: int, c: Tensor) -> float:
    """Biased MMD from a pooled kernel matrix: sqrt(max(mean k(a, a') + mean k(b, b') - 2 mean k(a, b), 0))."""
    kaa, kbb, kab = _weighted_means(k.double(), c, m, leave_out_self=False)
    return math.sqrt(max(float(kaa + kbb - 2 * kab), 0.0))


def neighbour_order(d: Tensor, keep: int = 64) -> Tensor:
    """Each point's ``keep`` nearest other points (N, keep), nearest first, ties to the lower index."""
    d = d.clone()
    d.fill_diagonal_(math.inf)
    if keep == 1:
        return d.argmin(1, keepdim=True)  # the first of equal distances, as argmin everywhere else
    return torch.topk(d, min(keep, len(d) - 1), dim=1, largest=False, sorted=True).indices


def one_nn_from_distances(d: Tensor, order: Tensor, m: int, c: Tensor) -> float:
    """Leave-one-out 1-NN two-sample accuracy from pooled distances d, ``neighbour_order(d)`` and counts c.

    Each drawn point is classified by its nearest other drawn point (the first of its neighbours with c > 0).
    """
    labels = torch.arange(len(c)) >= m  # True for b
    present = c[order] > 0  # (N, keep)
    first = present.double().argmax(1)  # the first drawn neighbour in each row
    nearest = order.gather(1, first[:, None]).squeeze(1)
    for i in torch.nonzero(~present.any(1) & (c > 0)).flatten():  # no drawn point among the kept neighbours
        row = d[i].clone()
        row[(c == 0) | (torch.arange(len(c)) == i)] = math.inf
        nearest[i] = row.argmin()
    correct = (labels[nearest] == labels).double()
    return float((c * correct).sum() / c.sum())


def polynomial_gram(x: Tensor) -> Tensor:
    """k(x, y) = (x.y / D + 1)^3 over all pairs of x (N, D): the kernel of KID."""
    x = x.double()
    return (x @ x.T / x.shape[1] + 1) ** 3


def gaussian_gram(x: Tensor, bandwidths: tuple[float, ...]) -> Tensor:
    """k(x, y) = sum_s exp(-|x - y|^2 / (2 s^2)) over all pairs of x (N, D)."""
    d2 = torch.cdist(x.double(), x.double()).pow(2)  # (N, N) squared distances
    return sum(torch.exp(-d2 / (2 * s**2)) for s in bandwidths)


def kernel_distance(a: Tensor, b: Tensor) -> float:
    """KID (Binkowski et al., 2018): unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / D + 1)^3."""
    x = torch.cat([a, b]).flatten(1)
    return kernel_distance_from_gram(polynomial_gram(x), len(a), resample_counts(len(a), len(b)))


def mmd(a: Tensor, b: Tensor, bandwidths: tuple[float, ...]) -> float:
    """MMD with a sum of Gaussian kernels (biased V-statistic, Gretton et al., 2012); 0 for a == b."""
    x = torch.cat([a, b]).flatten(1)
    return mmd_from_gram(gaussian_gram(x, bandwidths), len(a), resample_counts(len(a), len(b)))


def one_nn_accuracy(a: Tensor, b: Tensor) -> float:
    """Leave-one-out 1-nearest-neighbour two-sample accuracy (Lopez-Paz & Oquab, 2017).

    Label a as 0 and b as 1, classify each point by its nearest other point: about 0.5 when a and b come
    from one distribution, 1 when they are far apart (and below 0.5 when a copies b).
    """
    x = torch.cat([a, b]).double().flatten(1)  # (m + n, D)
    d = torch.cdist(x, x)
    return one_nn_from_distances(d, neighbour_order(d, keep=1), len(a), resample_counts(len(a), len(b)))
# --8<-- [end:kernels]


def _subsample(x: Tensor, n: int, seed: int) -> Tensor:
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


# ---------------------------------------------------------------------------------------------
# The digit classifier whose features FD / KD / 1-NN use
# ---------------------------------------------------------------------------------------------

CLASSIFIER_RECIPE = "cnn16-32-64/shift1/adamw2e-3-wd1e-4/epochs30/batch50/seed0/v1"  # change to retrain
FEATURE_DIM = 64
MAX_SET = 2000  # MMD and 1-NN use at most this many points a side (a seeded subsample)


def _shift(x: Tensor) -> Tensor:
    """Translate each image by -1, 0 or +1 pixels in each direction, padding with zeros."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # (B, 1, H + 2, W + 2)
    i, j = torch.randint(0, 3, (b,), device=x.device), torch.randint(0, 3, (b,), device=x.device)
    rows = (i[:, None] + torch.arange(h, device=x.device))[:, :, None].expand(b, h, w)
    cols = (j[:, None] + torch.arange(w, device=x.device))[:, None, :].expand(b, h, w)
    return padded[torch.arange(b, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


class DigitClassifier(torch.nn.Module):
    """A small CNN on 8x8 digits: two 3x3 convolutions, a max-pool, a 64-d feature layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),  # (B, 16, 8, 8)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 4, 4)
            nn.Flatten(), nn.Linear(512, FEATURE_DIM), nn.ReLU(),  # (B, 64): the features
        )
        self.head = nn.Linear(FEATURE_DIM, 10)

    @staticmethod
    def _check(x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != gdata.DIGIT_SHAPE:
            raise ValueError(f"expected x of shape (B, 1, 8, 8), got {tuple(x.shape)}")
        if x.dtype.is_floating_point:
            raise ValueError("expected integer levels 0..16 (use gdl_ref.data.quantize on continuous samples)")
        return x.float() / (gdata.DIGIT_LEVELS - 1)  # levels -> [0, 1]

    def features(self, x: Tensor) -> Tensor:
        return self.body(self._check(x))  # (B, 64)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 10) logits

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        z = _shift(self._check(x))  # augmentation: random one-pixel shifts
        return torch.nn.functional.cross_entropy(self.head(self.body(z)), y)


def train_digit_classifier(seed: int = 0) -> DigitClassifier:
    """Train the classifier on the digits train split with gdl_ref.train.fit (seeded, CPU, a few seconds)."""
    from gdl_ref.train import fit

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DigitClassifier()
        fit(model, gdata.digits("train"), epochs=30, batch_size=50, lr=2e-3, weight_decay=1e-4, seed=seed)
    return model.eval()


_CLASSIFIER: DigitClassifier | None = None


def digit_classifier(cache: bool = True) -> DigitClassifier:
    """The feature classifier: loaded from ``cache_dir()/digit-classifier.safetensors`` or trained once.

    The file records CLASSIFIER_RECIPE; a file with another recipe is retrained and replaced.
    """
    global _CLASSIFIER
    if _CLASSIFIER is not None and cache:
        return _CLASSIFIER
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = gdata.cache_dir() / "digit-classifier.safetensors"
    model = DigitClassifier()
    if cache and path.is_file():
        with safe_open(str(path), "pt") as fh:
            if (fh.metadata() or {}).get("recipe") == CLASSIFIER_RECIPE:
                model.load_state_dict({k: fh.get_tensor(k) for k in fh.keys()})
                _CLASSIFIER = model.eval()
                return _CLASSIFIER
    started = time.perf_counter()
    model = train_digit_classifier()
    seconds = time.perf_counter() - started
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        acc = classifier_accuracy(model)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"recipe": CLASSIFIER_RECIPE, "test_accuracy": f"{acc:.4f}",
                            "train_seconds": f"{seconds:.2f}"})
        tmp.replace(path)
        _CLASSIFIER = model
    return model


@torch.no_grad()
def classifier_accuracy(model: DigitClassifier | None = None, split: str = "test") -> float:
    """Accuracy of the feature classifier on a digits split."""
    model = model or digit_classifier()
    x, y = gdata.digits(split)
    return float((model(x).argmax(1) == y).double().mean())


@torch.no_grad()
def digit_features(x: Tensor) -> Tensor:
    """Classifier features (N, 64) of integer digit images (N, 1, 8, 8)."""
    return digit_classifier().features(x.cpu())


# ---------------------------------------------------------------------------------------------
# Sample quality
# ---------------------------------------------------------------------------------------------

PIXEL_BANDWIDTHS = (1.0, 2.0, 4.0)  # Gaussian kernel widths on pixels in [0, 1]^64 (|x - y| ~ 2..5)
Resample = tuple[Tensor, Tensor]  # indices (with repeats) into the samples and into the reference
Scorer = Callable[[Resample | None], dict[str, float]]


class _LazyOrder:
    """The neighbour order of pooled distances: the nearest only for the whole sets, 64 once a resample asks."""

    def __init__(self, d: Tensor) -> None:
        self.d, self.nearest, self.many = d, None, None

    def __call__(self, resample: Resample | None) -> Tensor:
        if resample is None:
            self.nearest = neighbour_order(self.d, keep=1) if self.nearest is None else self.nearest
            return self.nearest
        self.many = neighbour_order(self.d) if self.many is None else self.many
        return self.many


def digit_scorer(samples: Tensor, reference: Tensor, seed: int = 0) -> Scorer:
    """``score(resample=None)``: FD, KD, MMD and 1-NN of the samples against ``reference`` digits (M, 1, 8, 8).

    The features and the pooled matrices are computed once; ``score((ia, ib))`` reads them at the indices
    of a bootstrap replicate (``gdl_ref.evaluate``), ``score()`` at the whole sets.
    """
    ref = reference
    small_s, small_r = _subsample(samples, MAX_SET, seed), _subsample(ref, MAX_SET, seed + 1)
    fs, fr = digit_features(small_s).double(), digit_features(small_r).double()  # (N, 64), (M, 64)
    m, feats = len(fs), torch.cat([fs, fr])
    poly, dist = polynomial_gram(feats), torch.cdist(feats, feats)
    order = _LazyOrder(dist)
    pixels = gaussian_gram(torch.cat([small_s, small_r]).flatten(1).double() / 16, PIXEL_BANDWIDTHS)

    def score(resample: Resample | None = None) -> dict[str, float]:
        ia, ib = resample if resample is not None else (torch.arange(m), torch.arange(len(fr)))
        c = resample_counts(m, len(fr), ia, ib)
        return {"fd": frechet_distance(fs[ia], fr[ib]), "kd": kernel_distance_from_gram(poly, m, c),
                "mmd": mmd_from_gram(pixels, m, c), "one_nn": one_nn_from_distances(dist, order(resample), m, c)}

    return score


def sample_quality(samples: Tensor, reference: Tensor, seed: int = 0) -> dict[str, float]:
    """FD and KD on classifier features, MMD on pixels, 1-NN accuracy on features, against ``reference`` digits.

    samples and reference: int (N, 1, 8, 8) in 0..16, e.g. ``gdl_ref.data.dataset("digits").test``.
    ``gdl_ref.evaluate.evaluate_samples`` adds standard errors and floors.
    """
    return digit_scorer(samples, reference, seed)()


TOY_BANDWIDTHS = (0.1, 0.3, 1.0)
TOY_REFERENCE_SEED = 10_000  # fresh draws, distinct from the train/val/test seeds 0, 1, 2


def toy_scorer(samples: Tensor, toy: gdata.Dataset, seed: int = TOY_REFERENCE_SEED) -> Scorer:
    """``score(resample=None)``: MMD and 1-NN of 2-D samples (in the toy's own frame) against as many fresh
    draws of ``toy`` (as ``digit_scorer``)."""
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"expected samples of shape (N, 2), got {tuple(samples.shape)}")
    s = _subsample(samples.detach().cpu().double(), MAX_SET, seed)
    ref = toy.fresh(len(s), seed).double()
    m, x = len(s), torch.cat([s, ref])
    kernel, dist = gaussian_gram(x, TOY_BANDWIDTHS), torch.cdist(x, x)
    order = _LazyOrder(dist)

    def score(resample: Resample | None = None) -> dict[str, float]:
        ia, ib = resample if resample is not None else (torch.arange(m), torch.arange(len(ref)))
        c = resample_counts(m, len(ref), ia, ib)
        out = {"mmd": mmd_from_gram(kernel, m, c), "one_nn": one_nn_from_distances(dist, order(resample), m, c)}
        if toy.name == "8gaussians":
            out.update(_mode_coverage(s[ia]))
        return out

    return score


def _mode_coverage(s: Tensor) -> dict[str, float]:
    """8gaussians: modes holding a tenth of their fair share N/8 of samples within 3 sigma of a mode, and that share."""
    nearest, mode = torch.cdist(s, gdata._gauss8_means()).min(1)  # (N,) distance to, and index of, the nearest mode
    good = nearest <= 3 * gdata.GAUSS8_STD
    counts = torch.bincount(mode[good], minlength=8)
    return {"high_quality_share": float(good.double().mean()),
            "modes_covered": float((counts >= max(1.0, len(s) / 80)).sum())}


def toy_sample_quality(samples: Tensor, toy: gdata.Dataset, seed: int = TOY_REFERENCE_SEED) -> dict[str, float]:
    """MMD and 1-NN accuracy of 2-D samples (N, 2) against N fresh draws of ``toy`` (at most MAX_SET).

    For 8gaussians also ``modes_covered`` (modes holding at least a tenth of their fair share N/8 of
    high-quality samples) and ``high_quality_share`` (samples within 3 sigma of their nearest mode).
    """
    return toy_scorer(samples, toy, seed)()
