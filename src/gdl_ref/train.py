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

import functools
import inspect
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gdl_ref import distributed, run_lock
from gdl_ref.models import registry
from gdl_ref.checkpoint import load_checkpoint, save_checkpoint
from gdl_ref.eval_mode import evaluation
from gdl_ref.train_state import (EMA, History, TrainState, build_optimizers, count_steps, epoch_permutation,
                                 optimizer_hparams, rng_state, seed_everything)

__all__ = ["recipe", "History", "EMA", "TrainState", "fit", "evaluate", "build_optimizers", "optimizer_hparams", "parse_every"]

Data = Tensor | tuple[Tensor, ...]


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


def evaluate(model: nn.Module, data: Data, *, batch_size: int = 256, device: str | torch.device = "cpu",
             seed: int = 0) -> float:
    """Mean ``model.loss`` over ``data`` (weighted by batch size), eval mode, no grad, own RNG stream.

    Runs under ``eval_mode.evaluation`` seeded with ``seed``: a stochastic loss (dequantisation noise,
    sampled time steps) gives the same value every call and leaves the training RNG untouched.
    """
    tensors = _as_tuple(data, "val_data")
    total, n = 0.0, 0
    with evaluation(model, seed, no_grad=True):
        for i in range(0, len(tensors[0]), batch_size):
            batch = tuple(t[i:i + batch_size].to(device) for t in tensors)
            total += float(model.loss(*batch)) * len(batch[0])
            n += len(batch[0])
    return total / n


class _LossForward(nn.Module):
    """forward(*batch) = model.loss(*batch), so DistributedDataParallel sees a forward call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *batch: Tensor) -> Tensor:
        return self.model.loss(*batch)


def parse_every(every: int | str | None) -> tuple[int | None, float | None]:
    """A checkpoint interval as (steps, seconds): ``100`` or ``"100"`` is 100 steps, ``"30s"`` is 30 seconds."""
    if every is None:
        return None, None
    text = str(every).strip()
    try:
        value = float(text[:-1]) if text.endswith("s") else int(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"checkpoint_every: expected N (steps) or Ns (seconds), both positive, got {every!r}")
    return (None, float(value)) if text.endswith("s") else (int(value), None)


_LR, _WEIGHT_DECAY = 1e-3, 0.0  # fit's defaults: an argument away from them was asked for


def _warn_ignored(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], *, lr: float,
                  weight_decay: float, clip_grad: float | None, own_step: bool) -> None:
    """Warn (naming the argument) when a model's own optimisers or step do not use what fit was given."""
    held, name = optimizer_hparams(optimizers), type(model).__name__
    for arg, given, default in (("lr", lr, _LR), ("weight_decay", weight_decay, _WEIGHT_DECAY)):
        other = {k: row.get(arg) for k, row in held.items() if row.get(arg) != given}
        if given != default and other:
            warnings.warn(f"fit(..., {arg}={given}) is ignored: {name}.configure_optimizers sets {arg} itself "
                          f"({', '.join(f'{k}: {v}' for k, v in other.items())})", UserWarning, stacklevel=4)
    if clip_grad is not None and own_step:
        warnings.warn(f"fit(..., clip_grad={clip_grad}) is ignored: {name}.training_step updates the weights "
                      f"itself and fit clips only in its own step", UserWarning, stacklevel=4)


# ---------------------------------------------------------------------------------------------
# One step, one validation, one checkpoint
# ---------------------------------------------------------------------------------------------

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


def _log(state: TrainState, logs: dict[str, float], log_every: int) -> dict[str, float] | None:
    """Add a step's logs to the window; every ``log_every`` steps, turn the window into a row and return it."""
    for k, v in logs.items():
        state.window[k].append(float(v))
    if state.history.steps % log_every:
        return None
    row = {"step": state.history.steps, **{k: sum(v) / len(v) for k, v in state.window.items()}}
    state.history.train.append(row)
    state.window.clear()
    return row


def _validate(state: TrainState, val_data: Data, *, batch_size: int, device: torch.device, seed: int,
              keep_best: bool) -> int:
    """Record the validation loss of the evaluation weights; return validations since the last improvement."""
    h = state.history
    with _weights(state.model, state.eval_weights()):
        value = evaluate(state.model, val_data, batch_size=max(batch_size, 256), device=device, seed=seed + 1)
        improved = h.best_val is None or value < h.best_val
        if improved:
            h.best_val, h.best_step = value, h.steps
            if keep_best:
                state.best = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    h.val.append((h.steps, value))
    state.bad_evals = 0 if improved else state.bad_evals + 1
    return state.bad_evals


def _save(state: TrainState, path: Path | None, run: dict[str, int], device: torch.device, meta: dict[str, Any],
          info: distributed.DistInfo, weights: dict[str, Tensor] | None = None,
          record: dict[str, Any] | None = None) -> None:
    """Write the checkpoint folder: model.safetensors = ``weights`` (default: EMA or current), the rest to resume.

    Every rank calls it at the same step (it gathers each rank's random state); rank 0 writes to ``path``.
    """
    rngs = distributed.gather_to_main(rng_state(device), info)  # indexed by rank, on rank 0 only
    if rngs is None or path is None:
        return
    tensors, train_state = state.to_checkpoint(run, device, record, rngs)
    weights = weights if weights is not None else (state.eval_weights() or state.model.state_dict())
    h = state.history
    meta = {**meta, "fit": {**meta.get("fit", {}), "hparams": h.hparams, "optimizer_steps": dict(h.optimizer_steps)}}
    save_checkpoint(path, state.model, step=h.steps, weights=weights, meta=meta, resume=tensors,
                    train_state=train_state)


def _batch(tensors: tuple[Tensor, ...], step: int, per_epoch: int, global_batch: int, seed: int,
           info: distributed.DistInfo) -> tuple[Tensor, ...]:
    """The batch of ``step``: this rank's share of the next ``global_batch`` rows of the epoch's permutation."""
    epoch, pos = divmod(step, per_epoch)
    perm = _epoch_order(len(tensors[0]), seed, epoch)
    index = distributed.shard(perm[pos * global_batch:(pos + 1) * global_batch], info.rank, info.world_size)
    return tuple(t[index].to(info.device, non_blocking=True) for t in tensors)


_epoch_order = functools.lru_cache(maxsize=2)(epoch_permutation)  # one permutation an epoch, not one a step


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def _one_run_per_folder(train: Callable[..., History]) -> Callable[..., History]:
    """Hold the run lock of ``checkpoint_dir`` (rank 0, which writes it) while ``train`` runs.

    A second process writing into the same folder is refused with ``run_lock.FolderInUse`` before any work.
    """
    @functools.wraps(train)
    def locked(*args: Any, checkpoint_dir: str | Path | None = None, **kwargs: Any) -> History:
        joined = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if joined else int(os.environ.get("RANK", "0"))
        if checkpoint_dir is None or rank != 0:
            return train(*args, checkpoint_dir=checkpoint_dir, **kwargs)
        with run_lock.hold(checkpoint_dir):
            return train(*args, checkpoint_dir=checkpoint_dir, **kwargs)

    return locked


@torch.enable_grad()  # fit trains inside an outer torch.no_grad() too
@_one_run_per_folder
def fit(model: nn.Module, data: Data, *, val_data: Data | None = None, steps: int | None = None,
        epochs: int | None = None, seconds: float | None = None, batch_size: int = 64, lr: float = _LR,
        weight_decay: float = _WEIGHT_DECAY, seed: int = 0, device: str | torch.device = "cpu", amp: bool = False,
        clip_grad: float | None = None, ema_decay: float | None = None, patience: int | None = None,
        eval_every: int | None = None, progress: bool = False, checkpoint_dir: str | Path | None = None,
        resume: str | Path | None = None, log_every: int = 10, checkpoint_every: int | str | None = None,
        meta: dict[str, Any] | None = None, should_stop: Callable[[], bool] | None = None) -> History:
    """Train ``model`` on ``data`` until the first of ``steps`` / ``epochs`` / ``seconds`` runs out.

    data, val_data: a Tensor (N, ...) or a tuple of equal-length Tensors; a batch is passed as
        ``model.loss(x)`` or ``model.loss(*batch)``. Each epoch shuffles with a permutation seeded by
        (seed, epoch); the last incomplete global batch of an epoch is dropped.
    steps / epochs / seconds: budgets (at least one); ``steps`` and ``seconds`` count in total, also
        across a resume.
    lr, weight_decay, clip_grad: AdamW's settings and gradient clipping; a model with its own
        ``configure_optimizers`` / ``training_step`` may not use them, and fit then warns.
    amp: bf16 autocast, on CUDA only (a no-op with a warning elsewhere).
    ema_decay: keep an EMA of the weights; validation, checkpoints and the returned model use it.
        After the last step, a model with ``finish_fit(data)`` gets it called on its final weights (a
        diffusion model with analytic variances estimates them there), before the final checkpoint.
    patience: stop after this many validations without improvement and restore the best weights.
    eval_every: validate every this many steps (default: once an epoch) and after the last step.
    checkpoint_dir / checkpoint_every: write a checkpoint folder there every N steps (``100``) or
        seconds (``"30s"``) and at the end (rank 0), each time whole (see ``gdl_ref.checkpoint``);
        rank 0 holds the folder's run lock meanwhile (``gdl_ref.run_lock``: another run into it is refused).
    resume: a checkpoint folder; weights, optimisers, EMA, RNG states (each rank its own), step and history
        are restored and training continues as if it had never stopped.
    meta: extra entries for the checkpoint's meta.json (e.g. {"family": "flow", "data": "digits"}).
    should_stop: called after each step; True ends the run (stop_reason "interrupted") with a
        checkpoint to resume from, without the final validation.
    """
    if steps is None and epochs is None and seconds is None:
        raise ValueError("give a budget: at least one of steps, epochs, seconds")
    every_steps, every_seconds = parse_every(checkpoint_every)
    info = distributed.setup(device)
    dev = info.device
    tensors = _as_tuple(data, "data")
    n = len(tensors[0])
    global_batch = min(batch_size * info.world_size, n)  # one process with batch K*b == K processes of b
    per_epoch = max(n // global_batch, 1)
    limits = [s for s in (steps, None if epochs is None else epochs * per_epoch) if s is not None]
    total = min(limits) if limits else None
    eval_every = eval_every or per_epoch
    own_step = hasattr(model, "training_step")
    run = {"seed": seed, "batch_size": batch_size, "n": n}  # what a resumed run must share

    model.to(dev)
    optimizers = build_optimizers(model, lr, weight_decay)
    _warn_ignored(model, optimizers, lr=lr, weight_decay=weight_decay, clip_grad=clip_grad, own_step=own_step)
    state = TrainState(model, optimizers, EMA(model, ema_decay) if ema_decay is not None else None)
    if resume is not None:
        state.restore(load_checkpoint(resume), run, dev, info.rank, info.world_size)
    else:
        seed_everything(seed + info.rank)  # per-rank streams for noise inside the model
    h = state.history
    h.hparams = optimizer_hparams(optimizers)
    meta = {**(meta or {}), "fit": {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
                                    "ema_decay": ema_decay, "clip_grad": clip_grad, "patience": patience,
                                    "world_size": info.world_size}}

    if amp and dev.type != "cuda":
        warnings.warn(f"amp=True uses bf16 autocast on CUDA only; training in float32 on {dev}", stacklevel=2)
    use_amp = amp and dev.type == "cuda"

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()

    if info.distributed and own_step:
        distributed.broadcast_module(model, info)
        for opt in optimizers.values():
            distributed.average_gradients_before_step(opt, info)
    step_fn = None if own_step else _default_step(distributed.wrap(_LossForward(model), info), model, optimizers,
                                                   autocast, clip_grad)
    validate = functools.partial(_validate, state, val_data, batch_size=batch_size, device=dev, seed=seed,
                                 keep_best=patience is not None)
    save = functools.partial(_save, state, None if checkpoint_dir is None else Path(checkpoint_dir), run, dev, meta,
                             info)
    saving = distributed.any_across(checkpoint_dir is not None, info)  # every rank takes part in a save

    from tqdm import tqdm  # the text bar: notebooks without ipywidgets would warn with tqdm.auto

    bar = tqdm(total=total, initial=h.steps, disable=not (progress and info.is_main), unit="step", dynamic_ncols=True)
    start, base_seconds = time.perf_counter(), h.seconds
    last_save, last_eval = start, -1
    model.train()
    with count_steps(optimizers, h.optimizer_steps):
        while True:
            if total is not None and h.steps >= total:
                h.stop_reason = "steps" if steps is not None and h.steps >= steps else "epochs"
                break
            if seconds is not None and distributed.any_across(base_seconds + time.perf_counter() - start >= seconds,
                                                              info):
                h.stop_reason = "seconds"
                break
            if should_stop is not None and distributed.any_across(bool(should_stop()), info):
                h.stop_reason = "interrupted"
                break
            batch = _batch(tensors, h.steps, per_epoch, global_batch, seed, info)
            if own_step:
                with autocast():
                    logs = dict(model.training_step(batch, optimizers, h.steps))
            else:
                logs = step_fn(batch, h.steps)
            h.steps += 1
            h.seconds = base_seconds + time.perf_counter() - start
            if state.ema is not None:
                state.ema.update(model, h.steps - 1)  # the step just taken, counted from 0
            row = _log(state, logs, log_every)
            if row is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "step"}, refresh=False)
            bar.update(1)
            stop = False
            if val_data is not None and h.steps % eval_every == 0:
                bad_evals, last_eval = validate(), h.steps
                stop = patience is not None and bad_evals >= patience
            if saving and ((every_steps and h.steps % every_steps == 0)
                           or (every_seconds and distributed.any_across(
                               time.perf_counter() - last_save >= every_seconds, info))):
                save()
                last_save = time.perf_counter()
            if stop:
                h.stop_reason = "early_stopping"
                break
    bar.close()
    scheduled = state.record()  # a resumed run continues from the scheduled logs and validations only
    if state.window:  # the last rows, off the log_every / eval_every schedule
        h.train.append({"step": h.steps, **{k: sum(v) / len(v) for k, v in state.window.items()}})
    if val_data is not None and last_eval != h.steps and h.steps > 0 and h.stop_reason != "interrupted":
        validate()  # the budget ended between validations: record the final weights too
    h.seconds = base_seconds + time.perf_counter() - start
    final = state.best if patience is not None and state.best is not None else state.eval_weights()
    finish = getattr(model, "finish_fit", None)  # a model's last step on its final weights (e.g. calibration)
    if callable(finish) and h.stop_reason != "interrupted":
        trained = {k: v.detach().clone() for k, v in model.state_dict().items()}  # what a resume continues
        if final is not None:
            model.load_state_dict(final)
        finish(data)
        final = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(trained)
    if saving:
        save(final, scheduled)  # resumable from the last step's weights; model.safetensors = final
    if final is not None:
        model.load_state_dict(final)  # early stopping keeps the best weights; with EMA, the EMA weights
    distributed.barrier(info)
    model.eval()
    return h


def recipe(family: str, data: str) -> dict[str, Any]:
    """The ``fit`` keyword arguments ``family`` trains with on ``data`` (batch size, learning rate, EMA, ...).

    The family's ``config_for(data).recipe()`` laid over ``fit``'s own defaults of batch size and learning
    rate; a family module without ``config_for`` trains with those defaults. Budgets are not part of a recipe.
    ``gdl-ref train`` and ``gdl-ref bench`` both train with it.
    """
    defaults = {k: inspect.signature(fit).parameters[k].default for k in ("batch_size", "lr")}
    config_for = getattr(registry.module(family), "config_for", None)
    return {**defaults, **(config_for(data).recipe() if config_for is not None else {})}
