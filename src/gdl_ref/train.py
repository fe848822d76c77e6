"""One training loop for every model: ``fit(model, data, ...)``.

Any ``nn.Module`` with ``loss(x) -> Tensor`` trains by stochastic gradient descent on its loss,

    theta <- theta - lr * AdamW(grad_theta (1/B) sum_{i in batch} loss(x_i)),

seeded and reproducible, on CPU or CUDA (bf16 autocast as an option), for a budget of steps, epochs or
seconds, with validation and early stopping, gradient clipping, an exponential moving average (EMA)
of the weights, checkpoints that resume identically, and DDP under torchrun. Models that need their
own step (GANs, EBMs) define ``training_step`` and fit calls it instead.

References: Loshchilov & Hutter (2019), "Decoupled weight decay regularization" (AdamW); Polyak &
Juditsky (1992) (weight averaging); Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 2.
"""

from __future__ import annotations

import random
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gdl_ref import distributed
from gdl_ref.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["History", "EMA", "fit", "evaluate"]

Data = Tensor | tuple[Tensor, ...]


@dataclass
class History:
    """What ``fit`` did: steps done, wall seconds, logged train metrics, validation losses."""

    steps: int = 0
    seconds: float = 0.0
    train: list[dict[str, float]] = field(default_factory=list)  # {"step": s, "loss": ..., ...}
    val: list[tuple[int, float]] = field(default_factory=list)  # (step, mean validation loss)
    best_val: float | None = None
    best_step: int | None = None
    stop_reason: str = ""  # "steps", "epochs", "seconds" or "early_stopping"


# --8<-- [start:ema]
class EMA:
    """Exponential moving average of the weights: theta_ema <- d * theta_ema + (1 - d) * theta.

    With ``step`` given, d = min(decay, (1 + step) / (10 + step)): early on the average forgets the
    random initial weights quickly (after 2,000 steps a plain 0.999 would still hold 0.999^2000 = 14 %
    of them). The warm-up is the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage.
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


@contextmanager
def _weights(model: nn.Module, state: dict[str, Tensor] | None) -> Iterator[None]:
    """Temporarily load ``state`` into ``model`` (no-op for None)."""
    if state is None:
        yield
        return
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    try:
        yield
    finally:
        model.load_state_dict(saved)


def _as_tuple(data: Data, what: str) -> tuple[Tensor, ...]:
    tensors = (data,) if isinstance(data, Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{what} must be a Tensor or a tuple of Tensors")
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"{what}: tensors of unequal length {[len(t) for t in tensors]}")
    return tensors


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, *, batch_size: int = 256, device: str | torch.device = "cpu",
             seed: int = 0) -> float:
    """Mean ``model.loss`` over ``data`` (weighted by batch size), eval mode, no grad, own RNG stream.

    Runs under ``torch.random.fork_rng`` seeded with ``seed``: a stochastic loss (dequantisation noise,
    sampled time steps) gives the same value every call and leaves the training RNG untouched.
    """
    tensors = _as_tuple(data, "val_data")
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for i in range(0, len(tensors[0]), batch_size):
            batch = tuple(t[i:i + batch_size].to(device) for t in tensors)
            total += float(model.loss(*batch)) * len(batch[0])
            n += len(batch[0])
    model.train(was_training)
    return total / n


class _LossForward(nn.Module):
    """forward(*batch) = model.loss(*batch), so DistributedDataParallel sees a forward call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *batch: Tensor) -> Tensor:
        return self.model.loss(*batch)


# --8<-- [start:rng]
def _rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG a model may draw from (torch CPU/CUDA, numpy, random), as plain tensors and numbers."""
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


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The data order of an epoch: a function of (seed, epoch) only, so a resumed run finds it again."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)
# --8<-- [end:rng]


def _default_step(loss_fn: Callable[..., Tensor], model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                  autocast: Callable[[], Any], clip_grad: float | None) -> Callable[..., dict[str, float]]:
    def run(batch: tuple[Tensor, ...], step: int) -> dict[str, float]:
        # --8<-- [start:step]
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(*batch)  # scalar: mean loss over the batch
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss.detach())} at step {step + 1}")
        loss.backward()  # grad_theta loss (averaged over ranks by DDP)
        logs = {"loss": float(loss.detach())}
        if clip_grad is not None:  # g <- g * min(1, c / ||g||)
            logs["grad_norm"] = float(nn.utils.clip_grad_norm_(model.parameters(), clip_grad))
        for opt in optimizers.values():
            opt.step()
        # --8<-- [end:step]
        return logs

    return run


@torch.enable_grad()  # a caller's torch.no_grad() (an evaluation, a metric that trains its classifier) must not stop training
def fit(model: nn.Module, data: Data, *, val_data: Data | None = None, steps: int | None = None,
        epochs: int | None = None, seconds: float | None = None, batch_size: int = 64, lr: float = 1e-3,
        weight_decay: float = 0.0, seed: int = 0, device: str | torch.device = "cpu", amp: bool = False,
        clip_grad: float | None = None, ema_decay: float | None = None, patience: int | None = None,
        eval_every: int | None = None, progress: bool = False, checkpoint_dir: str | Path | None = None,
        resume: str | Path | None = None, log_every: int = 10, checkpoint_every: int | None = None,
        meta: dict[str, Any] | None = None) -> History:
    """Train ``model`` on ``data`` until the first of ``steps`` / ``epochs`` / ``seconds`` runs out.

    data, val_data: a Tensor (N, ...) or a tuple of equal-length Tensors; a batch is passed as
        ``model.loss(x)`` or ``model.loss(*batch)``. Each epoch shuffles with a permutation seeded by
        (seed, epoch); the last incomplete global batch of an epoch is dropped.
    steps / epochs / seconds: budgets (at least one); ``steps`` counts optimiser steps in total, also
        across a resume.
    amp: bf16 autocast, on CUDA only (a no-op with a warning elsewhere).
    ema_decay: keep an EMA of the weights; validation, checkpoints and the returned model use it.
    patience: stop after this many validations without improvement and restore the best weights.
    eval_every: validate every this many steps (default: once an epoch) and after the last step.
    checkpoint_dir / checkpoint_every: write a checkpoint there every N steps and at the end (rank 0).
    resume: a checkpoint folder; weights, optimisers, EMA, RNG states, step and history are restored
        and training continues as if it had never stopped.
    meta: extra entries for the checkpoint's meta.json (e.g. {"family": "flow", "data": "digits"}).
    """
    if steps is None and epochs is None and seconds is None:
        raise ValueError("give a budget: at least one of steps, epochs, seconds")
    info = distributed.setup(device)
    dev = info.device
    tensors = _as_tuple(data, "data")
    n = len(tensors[0])
    global_batch = min(batch_size * info.world_size, n)  # one process with batch K*b == K processes of b
    per_epoch = max(n // global_batch, 1)
    limits = [s for s in (steps, None if epochs is None else epochs * per_epoch) if s is not None]
    total = min(limits) if limits else None
    eval_every = eval_every or per_epoch
    custom = hasattr(model, "training_step")

    model.to(dev)
    if hasattr(model, "configure_optimizers"):
        optimizers = dict(model.configure_optimizers(lr))
    else:
        optimizers = {"model": torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)}
    ema = EMA(model, ema_decay) if ema_decay is not None else None
    history = History()
    resumed_window: dict[str, list[float]] = {}  # train metrics logged since the last row
    best_state: dict[str, Tensor] | None = None
    bad_evals = 0

    if resume is not None:
        ckpt = load_checkpoint(resume)
        ts = ckpt.train_state
        if ts is None:
            raise ValueError(f"{resume}: no train_state.pt, cannot resume (weights-only checkpoint)")
        if (ts["seed"], ts["batch_size"], ts["n"]) != (seed, batch_size, n):
            raise ValueError(f"{resume}: saved with seed={ts['seed']}, batch_size={ts['batch_size']}, "
                             f"N={ts['n']}; resume needs the same (got {seed}, {batch_size}, {n})")
        part = {p: {k[len(p) + 1:]: v for k, v in ckpt.resume.items() if k.startswith(p + ".")}
                for p in ("online", "ema", "best")}
        model.load_state_dict(part["online"])
        for name, opt in optimizers.items():
            opt.load_state_dict(ts["optimizers"][name])
        if ema is not None:
            if not part["ema"]:
                raise ValueError(f"{resume}: saved without EMA weights, cannot resume with ema_decay")
            ema.shadow = {k: v.to(dev) for k, v in part["ema"].items()}
        best_state = {k: v.to(dev) for k, v in part["best"].items()} or None
        h = ts["history"]
        history = History(h["steps"], h["seconds"], list(h["train"]), [tuple(v) for v in h["val"]],
                          h["best_val"], h["best_step"], "")
        bad_evals = ts["bad_evals"]
        resumed_window = ts["window"]
        _set_rng_state(ts["rng"], dev)
    else:
        _seed_everything(seed + info.rank)  # per-rank streams for noise inside the model

    if amp and dev.type != "cuda":
        warnings.warn(f"amp=True uses bf16 autocast on CUDA only; training in float32 on {dev}", stacklevel=2)
    use_amp = amp and dev.type == "cuda"

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()

    if info.distributed and custom:
        distributed.broadcast_module(model, info)
        for opt in optimizers.values():
            distributed.average_gradients_before_step(opt, info)
    step_fn = None if custom else _default_step(distributed.wrap(_LossForward(model), info), model, optimizers,
                                                 autocast, clip_grad)

    def eval_state() -> dict[str, Tensor] | None:
        return ema.shadow if ema is not None else None

    def tracking() -> tuple[Any, ...]:
        """The logs a resumed run starts from: scheduled rows only (every log_every / eval_every steps)."""
        return (list(history.train), list(history.val), history.best_val, history.best_step, best_state, bad_evals,
                {k: list(v) for k, v in window.items()})

    def save(path: Path, weights: dict[str, Tensor] | None = None, track: tuple[Any, ...] | None = None) -> None:
        """model.safetensors = ``weights`` (default: EMA or current); resume.safetensors = the rest.

        ``track``: the validation record a resumed run starts from (default: the current one).
        """
        train, val, best_val, best_step, best, bad, logged = track or tracking()
        weights = weights if weights is not None else (ema.shadow if ema is not None else model.state_dict())
        res = {f"online.{k}": v for k, v in model.state_dict().items()}
        res.update({f"ema.{k}": v for k, v in (ema.shadow if ema is not None else {}).items()})
        res.update({f"best.{k}": v for k, v in (best or {}).items()})
        ts = {"step": history.steps, "seed": seed, "batch_size": batch_size, "n": n, "bad_evals": bad, "window": logged,
              "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "rng": _rng_state(dev),
              "history": {"steps": history.steps, "seconds": history.seconds, "train": train,
                          "val": val, "best_val": best_val, "best_step": best_step}}
        extra = {"fit": {"batch_size": batch_size, "lr": lr, "seed": seed, "ema_decay": ema_decay,
                         "world_size": info.world_size}, **(meta or {})}
        save_checkpoint(path, model, step=history.steps, weights=weights, meta=extra, resume=res, train_state=ts)

    def validate() -> bool:
        """Record the validation loss; True when early stopping should stop now."""
        nonlocal best_state, bad_evals
        with _weights(model, eval_state()):
            value = evaluate(model, val_data, batch_size=max(batch_size, 256), device=dev, seed=seed + 1)
            improved = history.best_val is None or value < history.best_val
            if improved:
                history.best_val, history.best_step = value, history.steps
                if patience is not None:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.val.append((history.steps, value))
        bad_evals = 0 if improved else bad_evals + 1
        return patience is not None and bad_evals >= patience

    from tqdm import tqdm  # the text bar: notebooks without ipywidgets would warn with tqdm.auto

    bar = tqdm(total=total, initial=history.steps, disable=not (progress and info.is_main), unit="step",
               dynamic_ncols=True)
    window: dict[str, list[float]] = defaultdict(list, {k: list(v) for k, v in resumed_window.items()})
    start, base_seconds = time.perf_counter(), history.seconds
    perm, perm_epoch, last_eval = None, -1, -1
    model.train()
    while True:
        if total is not None and history.steps >= total:
            history.stop_reason = "steps" if steps is not None and history.steps >= steps else "epochs"
            break
        if seconds is not None and distributed.any_across(time.perf_counter() - start >= seconds, info):
            history.stop_reason = "seconds"
            break
        epoch, pos = divmod(history.steps, per_epoch)
        if epoch != perm_epoch:
            perm, perm_epoch = _permutation(n, seed, epoch), epoch
        index = distributed.shard(perm[pos * global_batch:(pos + 1) * global_batch], info.rank, info.world_size)
        batch = tuple(t[index].to(dev, non_blocking=True) for t in tensors)
        if custom:
            with autocast():
                logs = dict(model.training_step(batch, optimizers, history.steps))
        else:
            logs = step_fn(batch, history.steps)
        history.steps += 1
        history.seconds = base_seconds + time.perf_counter() - start
        if ema is not None:
            ema.update(model, history.steps - 1)  # the step just taken, counted from 0
        for k, v in logs.items():
            window[k].append(float(v))
        if history.steps % log_every == 0:
            row = {"step": history.steps, **{k: sum(v) / len(v) for k, v in window.items()}}
            history.train.append(row)
            window.clear()
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "step"}, refresh=False)
        bar.update(1)
        stop = False
        if val_data is not None and history.steps % eval_every == 0:
            stop, last_eval = validate(), history.steps
        if checkpoint_dir is not None and checkpoint_every and history.steps % checkpoint_every == 0 and info.is_main:
            save(Path(checkpoint_dir))
        if stop:
            history.stop_reason = "early_stopping"
            break
    bar.close()
    scheduled = tracking()  # a resumed run continues from the scheduled logs and validations only
    if window:  # the last rows, off the log_every / eval_every schedule
        history.train.append({"step": history.steps, **{k: sum(v) / len(v) for k, v in window.items()}})
    if val_data is not None and last_eval != history.steps and history.steps > 0:
        validate()  # the budget ended between validations: record the final weights too
    history.seconds = base_seconds + time.perf_counter() - start
    final = best_state if patience is not None and best_state is not None else eval_state()
    if checkpoint_dir is not None and info.is_main:
        save(Path(checkpoint_dir), final, scheduled)  # resumable from the last step; model.safetensors = final
    if final is not None:
        model.load_state_dict(final)  # early stopping keeps the best weights; with EMA, the EMA weights
    distributed.barrier(info)
    model.eval()
    return history

