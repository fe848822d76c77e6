"""One job of a benchmark run: what ``gdl-ref bench`` trains and scores once, and the key of its row when a
run resumes (``gdl_ref.bench.progress``)."""

from __future__ import annotations

from dataclasses import dataclass

from gdl_ref.data import Move

__all__ = ["Job"]


@dataclass(frozen=True)
class Job:
    """One run of the benchmark: a family (or a peer of it, by name) on a data set, maybe moved, under a seed."""

    family: str
    data: str
    seed: int = 0
    peer: str | None = None
    move: Move | None = None
    sweep: bool = True  # also score the family's other samplers (SAMPLER_SWEEPS)

    @property
    def label(self) -> str:
        return f"{self.peer or self.family} on {self.move.label(self.data) if self.move else self.data}, seed {self.seed}"
