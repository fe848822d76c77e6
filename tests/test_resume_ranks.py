"""A resumed distributed run keeps each rank's random stream: two gloo processes on CPU, as torchrun starts them."""

from __future__ import annotations

import textwrap

import pytest
import torch

from gdl_ref.checkpoint import load_checkpoint
from gdl_ref.train import fit
from test_distributed import run_ranks

torch.set_num_threads(1)

# The worker: a script under `torchrun --nproc_per_node=2`. It trains 8 steps straight through, then
# 4 steps with a checkpoint and 4 more resumed from it, and saves the noise each step drew.
WORKER = textwrap.dedent('''
    import os
    import sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])
    from test_resume_ranks import Noisy, noisy_data
    from gdl_ref import distributed
    from gdl_ref.train import fit

    out, rank = Path(sys.argv[1]), int(os.environ["RANK"])
    torch.manual_seed(0)
    straight = Noisy()
    fit(straight, noisy_data(), steps=8, batch_size=4, seed=3)
    torch.manual_seed(0)
    first = Noisy()
    fit(first, noisy_data(), steps=4, batch_size=4, seed=3, checkpoint_dir=out / "ck")
    resumed = Noisy()
    fit(resumed, noisy_data(), steps=8, batch_size=4, seed=3, resume=out / "ck")
    torch.save({"straight": torch.stack(straight.drawn), "before": torch.stack(first.drawn),
                "after": torch.stack(resumed.drawn), "weights": resumed.state_dict(),
                "straight_weights": straight.state_dict()}, out / f"rank{rank}.pt")
    distributed.cleanup()
''')


class Noisy(torch.nn.Module):
    """A linear model whose loss draws noise inside the model (as dequantisation does), and keeps what it drew."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.drawn: list[torch.Tensor] = []  # the noise of each step, (B, 3)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.rand_like(x)  # (B, 3), from this process's torch stream
        self.drawn.append(noise.detach().clone())
        return (self.lin(x + noise) ** 2).mean()


def noisy_data() -> torch.Tensor:
    return torch.randn(32, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_each_rank_continues_its_own_noise_after_a_resume(tmp_path):
    run_ranks(WORKER, tmp_path, timeout=180)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for rank, r in enumerate(ranks):
        assert r["straight"].shape == (8, 4, 3) and r["before"].shape == (4, 4, 3) and r["after"].shape == (4, 4, 3)
        # the resumed run draws exactly what the uninterrupted run drew, step for step, on its own rank
        assert torch.equal(r["before"], r["straight"][:4]), f"rank {rank}: steps 1-4"
        assert torch.equal(r["after"], r["straight"][4:]), f"rank {rank}: steps 5-8, after the resume"
    for r in ranks:  # and so ends with the same weights
        for k, v in r["weights"].items():
            assert torch.equal(v, r["straight_weights"][k]), k
    # the two ranks draw different noise, before the resume and after it
    assert not torch.equal(ranks[0]["before"], ranks[1]["before"]), "the ranks drew the same noise"
    assert not torch.equal(ranks[0]["after"], ranks[1]["after"]), "the ranks drew the same noise after the resume"
    saved = load_checkpoint(tmp_path / "ck").train_state["rng"]
    assert isinstance(saved, list) and len(saved) == 2  # one random state per rank
    assert not torch.equal(saved[0]["torch"], saved[1]["torch"])


def test_one_process_saves_its_state_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    straight = Noisy()
    fit(straight, noisy_data(), steps=6, batch_size=4, seed=1)
    torch.manual_seed(0)
    fit(Noisy(), noisy_data(), steps=3, batch_size=4, seed=1, checkpoint_dir=tmp_path / "ck")
    assert len(load_checkpoint(tmp_path / "ck").train_state["rng"]) == 1
    resumed = Noisy()
    torch.manual_seed(77)  # disturbed between the runs: the resume must restore the stream
    fit(resumed, noisy_data(), steps=6, batch_size=4, seed=1, resume=tmp_path / "ck")
    assert torch.equal(torch.stack(resumed.drawn), torch.stack(straight.drawn[3:]))
    assert all(torch.equal(v, straight.state_dict()[k]) for k, v in resumed.state_dict().items())


def test_a_rank_without_a_saved_state_gets_a_stream_of_its_own(tmp_path):
    from gdl_ref.train_state import TrainState

    fit(Noisy(), noisy_data(), steps=2, batch_size=4, seed=1, checkpoint_dir=tmp_path / "ck")
    ckpt = load_checkpoint(tmp_path / "ck")
    run = {"seed": 1, "batch_size": 4, "n": 32}
    draws = []
    for rank in (0, 1, 2):
        model = Noisy()
        state = TrainState(model, {"model": torch.optim.AdamW(model.parameters())})
        if rank == 0:
            with pytest.warns(UserWarning, match=r"saved by 1 process\(es\), resumed by 3"):
                state.restore(ckpt, run, torch.device("cpu"), rank, 3)
        else:
            state.restore(ckpt, run, torch.device("cpu"), rank, 3)
        draws.append(torch.rand(5))
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    model = Noisy()
    TrainState(model, {"model": torch.optim.AdamW(model.parameters())}).restore(ckpt, run, torch.device("cpu"), 1, 3)
    assert torch.equal(torch.rand(5), draws[1])  # the derived stream is the same on every restore
