"""Drawing samples reproducibly: n samples in batches under a fixed seed, on the CPU.

Every family's ``sample(n)`` draws from the global generator; ``draw`` forks it, so that drawing for an
evaluation does not move the caller's random state, and the same seed gives the same samples.
``check_fits`` refuses, before drawing, a request whose samples would not fit a memory limit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gdl_ref.eval_mode import evaluation

__all__ = ["draw", "check_fits", "SamplesTooLarge", "SAMPLE_MEMORY_LIMIT"]

SAMPLE_MEMORY_LIMIT = 2**30  # bytes: the most that one request may hold in memory (1 GiB)


class SamplesTooLarge(ValueError):
    """n samples would take more memory than the limit; ``most`` is the largest n that fits."""

    def __init__(self, n: int, shape: tuple[int, ...], nbytes: int, limit: int) -> None:
        self.n, self.most = n, limit // max(nbytes, 1)
        super().__init__(f"{n} samples of shape {shape} take {n * nbytes / 2**30:.3g} GiB, over the limit of "
                         f"{limit / 2**30:.3g} GiB; ask for at most {self.most}")


def check_fits(model: nn.Module, n: int, limit: int = SAMPLE_MEMORY_LIMIT, **sample_kwargs: Any) -> None:
    """Raise ``SamplesTooLarge`` if n samples need more than ``limit`` bytes: n * bytes of one sample.

    One sample is drawn to measure it, under a forked random state (the caller's stream does not move).
    """
    with evaluation(model, no_grad=True):
        one = model.sample(1, **sample_kwargs)  # (1, ...)
    nbytes = one.element_size() * one[0].numel()
    if n * nbytes > limit:
        raise SamplesTooLarge(n, tuple(one.shape[1:]), nbytes, limit)


def draw(model: nn.Module, n: int, seed: int = 0, batch: int = 512, progress: bool = False,
         **sample_kwargs: Any) -> torch.Tensor:
    """n samples on the CPU, drawn in batches under a fixed seed; ``sample_kwargs`` go to ``model.sample``.

    ``progress`` shows a bar (tqdm, on stderr) counting the samples drawn.

    The draw runs in ``eval_mode.evaluation``: eval mode, no gradients, a random state forked on the CPU and
    the model's CUDA devices; each submodule is returned to its previous mode afterwards.
    """
    out = []
    from tqdm import tqdm  # the text bar, as fit's

    bar = tqdm(total=n, disable=not progress, unit="sample", dynamic_ncols=True)
    try:
        with evaluation(model, seed, no_grad=True):
            for start in range(0, n, batch):
                out.append(model.sample(min(batch, n - start), **sample_kwargs).detach().cpu())
                bar.update(len(out[-1]))
    finally:
        bar.close()
    return torch.cat(out)
