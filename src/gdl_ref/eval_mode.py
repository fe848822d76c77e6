"""One evaluation context: a model scored or sampled in eval mode, in its own random stream, then handed back.

``evaluation(model, seed)`` puts every submodule in eval mode (dropout off, batch norm on its running
statistics), forks the random state of the CPU and of each CUDA device holding the model's parameters or
buffers (``torch.random.fork_rng``), seeds the fork when ``seed`` is given, and on exit -- also on an
exception -- restores the caller's random state and the ``training`` flag of each submodule as it was.
A draw made after the context is therefore the draw that would have been made without it, and two
contexts with the same seed draw the same numbers.

``fork=False`` keeps only the eval mode (the caller's stream moves as the body draws); ``no_grad=True``
runs the body under ``torch.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from itertools import chain

import torch
from torch import nn

__all__ = ["evaluation", "cuda_devices"]


def cuda_devices(model: nn.Module) -> list[int]:
    """The indices of the CUDA devices that hold any of ``model``'s parameters or buffers, sorted."""
    return sorted({t.device.index or 0 for t in chain(model.parameters(), model.buffers()) if t.device.type == "cuda"})


def _seed(seed: int, devices: list[int]) -> None:
    """Seed the CPU generator and those of ``devices`` alone (``torch.manual_seed`` would seed every CUDA device)."""
    torch.default_generator.manual_seed(seed)
    for index in devices:
        with torch.cuda.device(index):
            torch.cuda.manual_seed(seed)


@contextmanager
def evaluation(model: nn.Module, seed: int | None = None, *, fork: bool = True,
               no_grad: bool = False) -> Iterator[nn.Module]:
    """Run the body with ``model`` in eval mode and a forked random state (seeded with ``seed`` if given).

    On exit each submodule's ``training`` flag and the caller's random state of the CPU and of the model's
    CUDA devices are as they were on entry. ``fork=False`` leaves the random state shared with the caller
    (``seed`` must then be None); ``no_grad=True`` disables gradient tracking in the body. Yields ``model``.
    """
    if seed is not None and not fork:
        raise ValueError("a seed needs a forked random state: pass fork=True or seed=None")
    modes = [(module, module.training) for module in model.modules()]
    try:
        with ExitStack() as stack:
            if fork:
                devices = cuda_devices(model)
                stack.enter_context(torch.random.fork_rng(devices=devices))
                if seed is not None:
                    _seed(seed, devices)
            if no_grad:
                stack.enter_context(torch.no_grad())
            model.eval()
            yield model
    finally:
        for module, training in modes:
            module.training = training
