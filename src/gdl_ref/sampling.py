"""Drawing samples reproducibly: n samples in batches under a fixed seed, on the CPU.

Every family's ``sample(n)`` draws from the global generator; ``draw`` forks it, so that drawing for an
evaluation does not move the caller's random state, and the same seed gives the same samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["draw"]


@torch.no_grad()
def draw(model: nn.Module, n: int, seed: int = 0, batch: int = 512, **sample_kwargs: Any) -> torch.Tensor:
    """n samples on the CPU, drawn in batches under a fixed seed; ``sample_kwargs`` go to ``model.sample``.

    The model is put in eval mode for the draw and returned to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
            torch.manual_seed(seed)
            for start in range(0, n, batch):
                out.append(model.sample(min(batch, n - start), **sample_kwargs).detach().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
