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
import os
import time

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
def kernel_distance(a: Tensor, b: Tensor) -> float:
    """KID: unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / D + 1)^3.

    MMD^2_u = sum_{i!=j} k(a_i, a_j) / (m(m-1)) + sum_{i!=j} k(b_i, b_j) / (n(n-1)) - 2 mean_ij k(a_i, b_j)
    """
    a, b = a.double(), b.double()
    m, n, d = len(a), len(b), a.shape[1]
    kaa, kbb, kab = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
    return float((kaa.sum() - kaa.diagonal().sum()) / (m * (m - 1))
                 + (kbb.sum() - kbb.diagonal().sum()) / (n * (n - 1)) - 2 * kab.mean())


def mmd(a: Tensor, b: Tensor, bandwidths: tuple[float, ...]) -> float:
    """MMD with a sum of Gaussian kernels k(x, y) = sum_s exp(-|x - y|^2 / (2 s^2)) (biased V-statistic).

    MMD^2 = mean k(a, a') + mean k(b, b') - 2 mean k(a, b); returns sqrt(max(MMD^2, 0)), 0 for a == b.
    """
    a, b = a.double().flatten(1), b.double().flatten(1)

    def k(x: Tensor, y: Tensor) -> Tensor:
        d2 = torch.cdist(x, y).pow(2)  # (N, M) squared distances
        return sum(torch.exp(-d2 / (2 * s**2)) for s in bandwidths).mean()

    return math.sqrt(max(float(k(a, a) + k(b, b) - 2 * k(a, b)), 0.0))


def one_nn_accuracy(a: Tensor, b: Tensor) -> float:
    """Leave-one-out 1-nearest-neighbour two-sample accuracy (Lopez-Paz & Oquab, 2017).

    Label a as 0 and b as 1, classify each point by its nearest other point: about 0.5 when a and b come
    from one distribution, 1 when they are far apart (and below 0.5 when a copies b).
    """
    x = torch.cat([a, b]).double().flatten(1)  # (m + n, D)
    labels = torch.cat([torch.zeros(len(a)), torch.ones(len(b))])
    d = torch.cdist(x, x)
    d.fill_diagonal_(math.inf)  # leave one out
    return float((labels[d.argmin(1)] == labels).double().mean())
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


def _loadavg_text() -> str:
    """The 1-minute load average beside a recorded time ("unknown" where the system does not say)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "unknown"


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
                            "train_seconds": f"{seconds:.2f}", "loadavg": _loadavg_text()})
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


def sample_quality(samples: Tensor, reference: str = "test", seed: int = 0) -> dict[str, float]:
    """FD and KD on classifier features, MMD on pixels, 1-NN accuracy on features, against a digits split.

    samples: int (N, 1, 8, 8) in 0..16. Compare values with ``sample_quality_floor()`` at the same N.
    """
    ref = gdata.digits(reference)[0]
    fs, fr = digit_features(samples), digit_features(ref)
    small_s, small_r = _subsample(samples, MAX_SET, seed), _subsample(ref, MAX_SET, seed + 1)
    return {
        "fd": frechet_distance(fs, fr),
        "kd": kernel_distance(fs, fr),
        "mmd": mmd(small_s.float() / 16, small_r.float() / 16, PIXEL_BANDWIDTHS),
        "one_nn": one_nn_accuracy(_subsample(fs, MAX_SET, seed), _subsample(fr, MAX_SET, seed + 1)),
    }


def sample_quality_floor(n: int | None = None, reference: str = "test") -> dict[str, float]:
    """The floor: ``sample_quality`` of n real train images (default: as many as the reference split)."""
    train = gdata.digits("train")[0]
    n = n or len(gdata.digits(reference)[0])
    return sample_quality(train[:n], reference=reference)


TOY_BANDWIDTHS = (0.1, 0.3, 1.0)
TOY_REFERENCE_SEED = 10_000  # fresh draws, distinct from the train/val/test seeds 0, 1, 2


def toy_sample_quality(samples: Tensor, name: str, seed: int = TOY_REFERENCE_SEED) -> dict[str, float]:
    """MMD and 1-NN accuracy of 2-D samples (N, 2) against N fresh draws of the toy (at most MAX_SET).

    For 8gaussians also ``modes_covered`` (modes holding at least a tenth of their fair share N/8 of
    high-quality samples) and ``high_quality_share`` (samples within 3 sigma of their nearest mode).
    """
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"expected samples of shape (N, 2), got {tuple(samples.shape)}")
    s = _subsample(samples.detach().cpu().double(), MAX_SET, seed)
    ref = gdata.toy(name, len(s), seed=seed).double()
    out = {"mmd": mmd(s, ref, TOY_BANDWIDTHS), "one_nn": one_nn_accuracy(s, ref)}
    if name == "8gaussians":
        means = gdata._gauss8_means()  # (8, 2)
        dist = torch.cdist(s, means)  # (N, 8)
        nearest, mode = dist.min(1)
        good = nearest <= 3 * gdata.GAUSS8_STD
        counts = torch.bincount(mode[good], minlength=8)
        out["high_quality_share"] = float(good.double().mean())
        out["modes_covered"] = float((counts >= max(1.0, len(s) / 80)).sum())
    return out


def quality_with_floor(samples: Tensor, data: str) -> tuple[dict[str, float], dict[str, float]]:
    """Sample distances and their floor, the same distances for as many real train examples.

    digits: ``sample_quality`` against the test split; a toy: ``toy_sample_quality`` against fresh draws.
    """
    if data == "digits":
        quality, floor = sample_quality(samples, reference="test"), sample_quality_floor(n=len(samples))
    else:
        reference = gdata.load(data, "train")[: len(samples)]
        quality, floor = toy_sample_quality(samples, data), toy_sample_quality(reference, data)
    return ({k: float(v) for k, v in quality.items()}, {k: float(v) for k, v in floor.items()})


@torch.no_grad()
def mean_nll(model: torch.nn.Module, x: Tensor, device: str | torch.device = "cpu",
             batch: int = 128) -> tuple[float, float]:
    """Mean of ``-model.log_prob`` over x in nats per example, and its standard error std / sqrt(N)."""
    model.eval()
    nll = torch.cat([-model.log_prob(chunk.to(device)).double().cpu() for chunk in x.split(batch)])  # (N,)
    return float(nll.mean()), float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else float("nan")


__all__ += ["gaussian_frechet", "frechet_distance", "kernel_distance", "mmd", "one_nn_accuracy",
            "DigitClassifier", "train_digit_classifier", "digit_classifier", "classifier_accuracy",
            "digit_features", "sample_quality", "sample_quality_floor", "toy_sample_quality",
            "quality_with_floor", "mean_nll"]
