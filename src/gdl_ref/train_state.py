"""The state of a training run, and what it is made of: history, EMA, optimisers, random streams.

``TrainState`` holds everything ``fit`` carries from one step to the next (model, optimisers, EMA,
history with the step count, the validation record, the random states) and turns it into the two files
a resumed run reads (``resume.safetensors``, ``train_state.pt``) and back. ``build_optimizers`` builds a
run's optimisers from the model and the recipe; ``optimizer_hparams`` reads back what they run with.

References: Loshchilov & Hutter (2019), "Decoupled weight decay regularization" (AdamW); Polyak &
Juditsky (1992) (weight averaging).
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gdl_ref.checkpoint import Checkpoint, load_weights
from gdl_ref.records import from_json

__all__ = ["History", "EMA", "TrainState", "build_optimizers", "optimizer_hparams", "seed_everything",
           "epoch_permutation", "count_steps", "rng_state"]


@dataclass
class History:
    """What ``fit`` did: steps done, wall seconds, logged train metrics, validation losses, what ran."""

    steps: int = 0
    seconds: float = 0.0
    train: list[dict[str, float]] = field(default_factory=list)  # {"step": s, "loss": ..., ...}
    val: list[tuple[int, float]] = field(default_factory=list)  # (step, mean validation loss)
    best_val: float | None = None
    best_step: int | None = None
    stop_reason: str = ""  # "steps", "epochs", "seconds", "early_stopping" or "interrupted"
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)  # optimiser -> type, lr, weight_decay, betas, eps
    optimizer_steps: dict[str, int] = field(default_factory=dict)  # optimiser -> steps it took (a GAN's two apart)


# --8<-- [start:ema]
class EMA:
    """Exponential moving average of the weights: theta_ema <- d * theta_ema + (1 - d) * theta.

    With ``step`` given, d = min(decay, (1 + step) / (10 + step)): early on the average forgets the
    random initial weights quickly (after 2,000 steps a plain 0.999 would still hold a share
    0.999^2000 = exp(2000 ln 0.999), about e^-2, of them). The warm-up is the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int | None = None) -> None:
        d = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1.0 - d)  # d * ema + (1 - d) * theta
            else:
                self.shadow[k].copy_(v)  # integer buffers (counters) are copied
# --8<-- [end:ema]


# --8<-- [start:rng]
def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG this process's model may draw from (torch CPU/CUDA, numpy, random), as plain tensors and numbers.

    Each rank of a distributed run has its own (seeded with ``seed + rank``); a checkpoint keeps them all.
    """
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    npk = state["numpy"]
    np.random.set_state(("MT19937", npk["keys"].numpy().astype(np.uint32), npk["pos"], npk["has_gauss"],
                         npk["cached"]))
    random.setstate((3, tuple(int(v) for v in state["python"]), None))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)


def derived_seed(rank0: dict[str, Any], rank: int) -> int:
    """A seed for a rank that has no saved state: SHA-256 of rank 0's torch state and the rank, 64 bits.

    Distinct for every rank and every checkpoint, and the same on every restore of one checkpoint.
    """
    digest = hashlib.sha256(rank0["torch"].numpy().tobytes() + rank.to_bytes(8, "little")).digest()
    return int.from_bytes(digest[:8], "little")


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The data order of an epoch: a function of (seed, epoch) only, so a resumed run finds it again."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)
# --8<-- [end:rng]


# ---------------------------------------------------------------------------------------------
# The optimisers: built from the recipe, their hyperparameters read back as they run
# ---------------------------------------------------------------------------------------------

# --8<-- [start:optimizers]
def build_optimizers(model: nn.Module, lr: float, weight_decay: float) -> dict[str, torch.optim.Optimizer]:
    """The optimisers of a run, by name: the model's own (``configure_optimizers(lr)``), else one AdamW,

        theta <- theta - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * theta)

    (Loshchilov & Hutter, 2019). ``fit`` builds its optimisers here and nowhere else.
    """
    if hasattr(model, "configure_optimizers"):
        return dict(model.configure_optimizers(lr))
    return {"model": torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)}
# --8<-- [end:optimizers]


def optimizer_hparams(optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, dict[str, Any]]:
    """What each optimiser runs with, read from its ``param_groups``: type, lr, weight_decay, betas, eps.

    A setting that differs between parameter groups is given as the list of the groups' values.
    """
    record: dict[str, dict[str, Any]] = {}
    for name, opt in optimizers.items():
        row: dict[str, Any] = {"type": type(opt).__name__}
        for key in ("lr", "weight_decay", "betas", "eps", "momentum"):
            values = [g[key] for g in opt.param_groups if key in g]
            if values:
                row[key] = values[0] if all(v == values[0] for v in values) else values
        record[name] = row
    return record


@contextmanager
def count_steps(optimizers: dict[str, torch.optim.Optimizer], counts: dict[str, int]) -> Iterator[None]:
    """Count each optimiser's ``step()`` calls into ``counts`` while the block runs."""
    for name in optimizers:
        counts.setdefault(name, 0)

    def hook(name: str) -> Callable[..., None]:
        def count(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
            counts[name] += 1
        return count

    handles = [opt.register_step_post_hook(hook(name)) for name, opt in optimizers.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# The state of a run, saved and restored as one object
# ---------------------------------------------------------------------------------------------

@dataclass
class TrainState:
    """Everything a run carries from one step to the next: weights, optimisers, EMA, history, RNG.

    The step is ``history.steps``; the epoch and the position in it follow from it. ``to_checkpoint``
    and ``restore`` turn the state into the two files a resumed run reads, and back.
    """

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    ema: EMA | None = None
    history: History = field(default_factory=History)
    best: dict[str, Tensor] | None = None  # the best weights so far, kept when early stopping is on
    bad_evals: int = 0  # validations since the last improvement
    window: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # logs since the last row

    def eval_weights(self) -> dict[str, Tensor] | None:
        """The weights that validation, checkpoints and the caller use: the EMA's, or None for the model's."""
        return self.ema.shadow if self.ema is not None else None

    def record(self) -> dict[str, Any]:
        """A copy of the logs and the validation record (what a resumed run starts from)."""
        h = self.history
        return {"train": list(h.train), "val": list(h.val), "best_val": h.best_val, "best_step": h.best_step,
                "best": self.best, "bad_evals": self.bad_evals, "window": {k: list(v) for k, v in self.window.items()}}

    def to_checkpoint(self, run: dict[str, int], device: torch.device, record: dict[str, Any] | None = None,
                      rng: list[dict[str, Any]] | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(tensors of resume.safetensors, contents of train_state.pt); ``record`` defaults to the current one.

        ``rng``: every rank's ``rng_state``, indexed by rank (default: this process's alone).
        """
        r, h = record or self.record(), self.history
        tensors = {f"online.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in (self.eval_weights() or {}).items()})
        tensors.update({f"best.{k}": v for k, v in (r["best"] or {}).items()})
        state = {"step": h.steps, **run, "bad_evals": r["bad_evals"], "window": r["window"],
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}, "rng": rng or [rng_state(device)],
                 "history": {"steps": h.steps, "seconds": h.seconds, "train": r["train"], "val": r["val"],
                             "best_val": r["best_val"], "best_step": r["best_step"],
                             "optimizer_steps": dict(h.optimizer_steps)}}
        return tensors, state

    def restore(self, ckpt: Checkpoint, run: dict[str, int], device: torch.device, rank: int = 0,
                world_size: int = 1) -> None:
        """Load a checkpoint written by ``to_checkpoint`` for the same ``run`` (seed, batch size, N).

        Rank ``rank`` takes its own saved random state, so each rank's stream goes on as if the run had
        never stopped. A rank the checkpoint has no state for (more processes than saved it) seeds its
        streams with ``derived_seed`` of rank 0's state, and rank 0 warns that the run is not the same.
        """
        ts, where = ckpt.train_state, ckpt.path
        if ts is None:
            raise ValueError(f"{where}: no train_state.pt, cannot resume (weights-only checkpoint)")
        saved = {k: ts[k] for k in run}
        if saved != run:
            raise ValueError(f"{where}: saved with seed={saved['seed']}, batch_size={saved['batch_size']}, "
                             f"N={saved['n']}; resume needs the same (got {run['seed']}, {run['batch_size']}, "
                             f"{run['n']})")
        part = {p: {k[len(p) + 1:]: v for k, v in ckpt.resume.items() if k.startswith(p + ".")}
                for p in ("online", "ema", "best")}
        load_weights(self.model, part["online"], where / "resume.safetensors")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ts["optimizers"][name])
        if self.ema is not None:
            if not part["ema"]:
                raise ValueError(f"{where}: saved without EMA weights, cannot resume with ema_decay")
            self.ema.shadow = {k: v.to(device) for k, v in part["ema"].items()}
        self.best = {k: v.to(device) for k, v in part["best"].items()} or None
        h = ts["history"]
        self.history = from_json(History, h)  # the validation record's (step, loss) pairs back as tuples
        self.bad_evals = ts["bad_evals"]
        self.window = defaultdict(list, {k: list(v) for k, v in ts["window"].items()})
        saved_rng = [ts["rng"]] if isinstance(ts["rng"], dict) else ts["rng"]  # a dict: one process's state
        if not (isinstance(saved_rng, list) and saved_rng and all(isinstance(r, dict) for r in saved_rng)):
            raise ValueError(f"{where / 'train_state.pt'}: 'rng' is not a list of random states, one per rank")
        if len(saved_rng) != world_size and rank == 0:
            warnings.warn(f"{where}: saved by {len(saved_rng)} process(es), resumed by {world_size}: the shares of "
                          f"each global batch and the random streams differ from the saved run's", UserWarning,
                          stacklevel=3)
        if rank < len(saved_rng):
            _set_rng_state(saved_rng[rank], device)
        else:
            seed_everything(derived_seed(saved_rng[0], rank))
