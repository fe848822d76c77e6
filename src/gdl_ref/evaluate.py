"""Evaluation: how a model is scored, with a standard error on every figure.

* ``evaluate_density`` -- test NLL in nats per example with its standard error sd / sqrt(N); bits per
  dimension on digits, NLL / (64 ln 2); the kind of number it is (``gdl_ref.likelihood.Bound``); and on the
  2-D toys the **paired KL**

      KL(p || q) = E_p[log p(X) - log q(X)]  ~  (1/N) sum_i (log p(x_i) - log q(x_i)),

  over the test points x_i ~ p, with standard error sd_i(...) / sqrt(N). Pairing the two log-densities on
  the same points removes the noise they share (the entropy of a second sample is never subtracted).
  A finite test set can give a negative estimate; one below minus its standard error is flagged.
* ``evaluate_samples`` -- the sample distances of ``gdl_ref.metrics`` with a bootstrap standard error
  (samples and reference resampled with replacement; Efron & Tibshirani, 1993, "An Introduction to the
  Bootstrap", ch. 6), each beside its floor: the same distance for as many real train examples, as the mean
  +- sd over seeded random train subsets (the digits rows are ordered by writer, so a contiguous block is
  not a sample of the same distribution as the test split).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref import metrics
from gdl_ref.eval_mode import evaluation
from gdl_ref.likelihood import Bound, bits_per_dim
from gdl_ref.sampling import draw

__all__ = ["DensityResult", "Distance", "SampleResult", "Evaluation", "bound_of", "bound_label", "mean_and_stderr",
           "paired_kl", "bootstrap_stderr", "floor", "evaluate_density", "evaluate_samples", "evaluate_model"]

BOOTSTRAP_REPLICATES = 50  # replicates of the bootstrap standard error of a sample distance
FLOOR_SUBSETS = 5  # seeded random train subsets of each floor
EVAL_BATCH = 128  # test examples per log_prob call


# ---------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------

# --8<-- [start:estimators]
def mean_and_stderr(values: Tensor) -> tuple[float, float]:
    """Mean of values (N,) and its standard error sd / sqrt(N) (NaN for N < 2)."""
    v = values.double()
    stderr = float(v.std() / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), stderr


def paired_kl(log_p: Tensor, log_q: Tensor) -> tuple[float, float]:
    """KL(p || q) ~ mean_i (log p(x_i) - log q(x_i)) over x_i ~ p, and its standard error; both (N,) in nats."""
    return mean_and_stderr(log_p.double() - log_q.double())


def bootstrap_stderr(statistic: Callable[[Tensor, Tensor], dict[str, float]], n_a: int, n_b: int,
                     replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> dict[str, float]:
    """Bootstrap standard error of each value of ``statistic(ia, ib)``: the sd over ``replicates`` draws of
    indices ia (n_a,) and ib (n_b,) with replacement into the two sets."""
    g = torch.Generator().manual_seed(seed)
    runs = [statistic(torch.randint(n_a, (n_a,), generator=g), torch.randint(n_b, (n_b,), generator=g))
            for _ in range(replicates)]
    return {k: float(torch.tensor([r[k] for r in runs], dtype=torch.float64).std()) for k in runs[0]}
# --8<-- [end:estimators]


# ---------------------------------------------------------------------------------------------
# Likelihood
# ---------------------------------------------------------------------------------------------

def bound_of(model: nn.Module) -> Bound | None:
    """What ``model.log_prob`` returns: its ``bound`` (a ``gdl_ref.likelihood.Bound``); None without a likelihood."""
    if not hasattr(model, "log_prob"):
        return None
    bound = getattr(model, "bound", None)
    if bound is not None and not isinstance(bound, Bound):
        raise TypeError(f"{type(model).__name__}.bound is {bound!r}, not a gdl_ref.likelihood.Bound")
    return bound


def bound_label(model: nn.Module) -> str | None:
    """The bound's name for tables: ``iwae-K`` with the model's sample count K, else ``Bound.value``."""
    bound = bound_of(model)
    if bound is None:
        return None
    k = getattr(getattr(model, "config", None), "iwae_k", None)
    return f"iwae-{k}" if bound is Bound.IWAE and k else bound.value


@dataclass(frozen=True)
class DensityResult:
    """Test likelihood of a model: nats per example, bits/dim on images, paired KL on toys (with errors)."""

    data: str
    bound: Bound
    bound_label: str
    examples: int
    nll: float  # mean -log q(x) in nats per example
    nll_stderr: float
    bits_per_dim: float | None = None  # images only
    bits_per_dim_stderr: float | None = None
    entropy: float | None = None  # toys: the true differential entropy H(p)
    kl: float | None = None  # toys: paired KL(p || q)
    kl_stderr: float | None = None

    @property
    def kl_negative(self) -> bool:
        """True when the paired KL lies below zero by more than its standard error (a finite test sample)."""
        return self.kl is not None and self.kl_stderr is not None and self.kl < -self.kl_stderr

    def to_dict(self) -> dict[str, Any]:
        """The figures as a flat, JSON-ready dict (bound, examples, NLL and its standard error, ...)."""
        out: dict[str, Any] = {"bound": self.bound_label, "test_examples": self.examples,
                               "test_nll": self.nll, "test_nll_stderr": self.nll_stderr}
        if self.bits_per_dim is not None:
            out.update(test_bits_per_dim=self.bits_per_dim, test_bits_per_dim_stderr=self.bits_per_dim_stderr)
        if self.kl is not None:
            out.update(entropy=self.entropy, kl=self.kl, kl_stderr=self.kl_stderr, kl_negative=self.kl_negative)
        return out


def evaluate_density(model: nn.Module, data: gdata.Dataset, *, examples: int | None = None, seed: int = 0,
                     device: str | torch.device = "cpu", batch: int = EVAL_BATCH) -> DensityResult:
    """Score ``model.log_prob`` on the test split of ``data`` (its first ``examples`` rows).

    Monte-Carlo bounds (dequantisation noise, the ELBO's draws) run seeded with ``seed`` in a random state
    forked on the CPU and the model's CUDA devices (``eval_mode.evaluation``); the model is evaluated in eval
    mode, without gradients, and each submodule is returned to its previous mode. A moved
    toy is scored on its moved test split against the moved density.
    """
    bound = bound_of(model)
    if bound is None:
        raise TypeError(f"{type(model).__name__} reports no likelihood (no log_prob with a bound)")
    x = data.test[: examples or len(data.test)]
    with evaluation(model, seed, no_grad=True):
        log_q = torch.cat([model.log_prob(chunk.to(device)).double().cpu() for chunk in x.split(batch)])  # (N,)
    nll, nll_se = mean_and_stderr(-log_q)
    fields: dict[str, Any] = {}
    if data.images:
        fields.update(bits_per_dim=float(bits_per_dim(nll, gdata.DIGIT_DIMS)),
                      bits_per_dim_stderr=float(bits_per_dim(nll_se, gdata.DIGIT_DIMS)))
    else:
        kl, kl_se = paired_kl(data.log_prob(x), log_q)
        fields.update(entropy=data.entropy, kl=kl, kl_stderr=kl_se)
    return DensityResult(data=data.name, bound=bound, bound_label=bound_label(model) or bound.value,
                         examples=len(x), nll=nll, nll_stderr=nll_se, **fields)


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Distance:
    """One sample distance: its value and bootstrap standard error, and its floor as mean +- sd over subsets."""

    value: float
    stderr: float
    floor: float
    floor_sd: float


@dataclass(frozen=True)
class SampleResult:
    """Sample distances of ``samples`` drawn samples against the data, each with its floor."""

    data: str
    samples: int
    distances: dict[str, Distance] = field(default_factory=dict)
    replicates: int = BOOTSTRAP_REPLICATES
    floor_subsets: int = FLOOR_SUBSETS

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict: one dict per kind of figure (distances, their errors, floors)."""
        d = self.distances
        return {"samples": self.samples, "bootstrap_replicates": self.replicates, "floor_subsets": self.floor_subsets,
                "sample_quality": {k: v.value for k, v in d.items()},
                "sample_quality_stderr": {k: v.stderr for k, v in d.items()},
                "sample_quality_floor": {k: v.floor for k, v in d.items()},
                "sample_quality_floor_sd": {k: v.floor_sd for k, v in d.items()}}


def _scorer(data: gdata.Dataset, samples: Tensor) -> metrics.Scorer:
    """The distances of a data set: ``metrics.digit_scorer`` against the test split, else the toy's."""
    return metrics.digit_scorer(samples, data.test) if data.images else metrics.toy_scorer(samples, data)


def _set_sizes(data: gdata.Dataset, n: int) -> tuple[int, int]:
    """How many samples and reference points the distances use (each set is capped at MAX_SET)."""
    reference = len(data.test) if data.images else n
    return min(n, metrics.MAX_SET), min(reference, metrics.MAX_SET)


# --8<-- [start:floor]
@functools.lru_cache(maxsize=64)  # the same for every model scored on (data, n): computed once a process
def floor(data: gdata.Dataset, n: int, subsets: int = FLOOR_SUBSETS, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Each distance for n real train examples, as (mean, sd) over ``subsets`` seeded random train subsets.

    Random subsets, not the first n rows: the digits rows are ordered by writer, and a contiguous block
    is not exchangeable with the test split. n is capped at the train split's size (1,000 digits). A
    moved toy's floor is its toy's: distances are measured in the toy's own frame.
    """
    if data.move is not None:
        return floor(data.unmoved(), n, subsets, seed)
    train = data.train
    n = min(n, len(train))
    runs = []
    for k in range(subsets):
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + k))[:n]
        runs.append(_scorer(data, train[pick])())
    values = {key: torch.tensor([r[key] for r in runs], dtype=torch.float64) for key in runs[0]}
    return {key: (float(v.mean()), float(v.std()) if len(v) > 1 else math.nan) for key, v in values.items()}
# --8<-- [end:floor]


def evaluate_samples(samples: Tensor, data: gdata.Dataset, *, replicates: int = BOOTSTRAP_REPLICATES,
                     subsets: int = FLOOR_SUBSETS, seed: int = 0) -> SampleResult:
    """The sample distances of ``samples`` against ``data`` with bootstrap standard errors and floors.

    digits: integer samples (N, 1, 8, 8) against the test split; a toy: points (N, 2) against fresh draws,
    a moved toy's samples moved back first. ``seed`` seeds the bootstrap; the floors use the same subsets
    whatever the seed (so models compare).
    """
    samples = data.unmove(samples)
    score = _scorer(data, samples)
    values = score(None)
    n, n_ref = _set_sizes(data, len(samples))
    stderr = bootstrap_stderr(lambda ia, ib: score((ia, ib)), n, n_ref, replicates, seed)
    floors = floor(data, len(samples), subsets)
    return SampleResult(data=data.name, samples=len(samples), replicates=replicates, floor_subsets=subsets,
                        distances={k: Distance(values[k], stderr[k], *floors[k]) for k in values})


# ---------------------------------------------------------------------------------------------
# Both
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    """What ``gdl-ref evaluate`` and each benchmark row report: the likelihood (if any) and the samples."""

    data: str
    model: str
    params: int
    density: DensityResult | None
    samples: SampleResult

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data, "model": self.model, "params": self.params}
        if self.density is not None:
            out.update(self.density.to_dict())
        return {**out, **self.samples.to_dict()}


def evaluate_model(model: nn.Module, data: gdata.Dataset, *, samples: int | None = None, seed: int = 0,
                   device: str | torch.device = "cpu", drawn: Tensor | None = None,
                   examples: int | None = None) -> Evaluation:
    """``evaluate_density`` (when the model has a likelihood) and ``evaluate_samples`` of one model.

    ``drawn``: samples already drawn; else ``samples`` of them (default: the test split's size) by ``draw``.
    """
    model.to(device)
    density = evaluate_density(model, data, examples=examples, seed=seed, device=device) \
        if bound_of(model) is not None else None
    if drawn is None:
        drawn = draw(model, samples or len(data.test), seed=seed)
    return Evaluation(data=data.label, model=type(model).__name__, params=sum(p.numel() for p in model.parameters()),
                      density=density, samples=evaluate_samples(drawn, data, seed=seed))

