"""The compute each benchmark run may spend, counted in optimiser steps at the recipe's batch size.

A budget in steps is a property of the run, not of the machine: on the same torch build and thread count
two runs of one seed make the same updates and score the same bits, and on another machine the figures
agree within their spread over seeds. Time is measured (examples per second), never spent as a budget.
``--budget-seconds`` gives a run a wall-clock budget instead.

Each family's steps are set so that it reaches its own stopping point where it has one: PixelCNN, the
digits flow, the VAE and MADE stop early on the validation split (patience in ``gdl_ref.train.recipe``)
well inside their budget, so more steps would change nothing; diffusion, the GAN and the EBM have no
validation signal to stop on and train for exactly their steps. A peer gets the budget of the family it
is compared with, so both sides make the same number of updates on the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget", "RECORDED_STEPS", "recorded_budget"]


@dataclass(frozen=True)
class Budget:
    """What one run may spend: optimiser steps and/or wall-clock seconds (``fit`` stops at the first)."""

    seconds: float | None = None
    steps: int | None = None

    def label(self) -> str:
        """``"2,000 steps"``, ``"120 s"``, both joined by "or" (whichever ends the run first), or ``"none"``."""
        parts = ([f"{self.steps:,} steps"] if self.steps else []) + ([f"{self.seconds:g} s"] if self.seconds else [])
        return " or ".join(parts) or "none"


# family -> data kind -> optimiser steps. "digits" is the 8x8 digits; "toys" every 2-D toy and moved toy.
RECORDED_STEPS: dict[str, dict[str, int]] = {
    "autoregressive": {"digits": 1_500, "toys": 15_000},  # PixelCNN stops near step 650; MADE near 4,000-14,000
    "flow": {"digits": 2_000, "toys": 3_000},  # the digits flow stops near step 500
    "vae": {"digits": 8_000, "toys": 10_000},  # stops near step 6,000
    "diffusion": {"digits": 2_000, "toys": 5_000},
    "gan": {"digits": 10_000, "toys": 10_000},
    "ebm": {"digits": 1_500, "toys": 10_000},
}


def recorded_budget(family: str, data: str) -> Budget:
    """The step budget of ``family`` on ``data`` (digits, or any toy) in the recorded run."""
    if family not in RECORDED_STEPS:
        raise ValueError(f"no recorded budget for family {family!r}; valid: {', '.join(RECORDED_STEPS)}")
    return Budget(steps=RECORDED_STEPS[family]["digits" if data == "digits" else "toys"])
