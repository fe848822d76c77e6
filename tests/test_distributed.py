"""Two gloo processes on CPU train the same model as one process on the combined batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gdl_ref import distributed
from gdl_ref.train import fit

torch.set_num_threads(1)

# The worker: what a user's script under `torchrun --nproc_per_node=2` would be. torchrun sets
# RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; the test sets the same variables itself.
WORKER = textwrap.dedent('''
    import sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])
    from test_distributed import Pair, Regression, regression_data, pair_data
    from gdl_ref import distributed
    from gdl_ref.train import fit

    out = Path(sys.argv[1])
    rank = int(__import__("os").environ["RANK"])
    torch.manual_seed(rank)  # different initial weights per rank: fit must make them agree
    model = Regression()
    fit(model, regression_data(), steps=12, batch_size=8, lr=0.05, seed=0, progress=True,
        checkpoint_dir=out / f"ck{rank}")
    torch.manual_seed(rank)
    pair = Pair()
    fit(pair, pair_data(), steps=12, batch_size=8, lr=0.05, seed=0)
    torch.save({"regression": model.state_dict(), "pair": pair.state_dict()}, out / f"rank{rank}.pt")
    distributed.cleanup()
''')


class Regression(torch.nn.Module):
    """A tiny linear model whose loss is a mean over the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((self.lin(x) - y) ** 2).mean()


class Pair(torch.nn.Module):
    """Two linear maps with their own optimisers, trained by a model-defined step."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(3, 1)
        self.b = torch.nn.Linear(3, 1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return (self.a(x) ** 2).mean()

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"a": torch.optim.SGD(self.a.parameters(), lr=lr), "b": torch.optim.Adam(self.b.parameters(), lr=lr)}

    def training_step(self, batch, optimizers, step):
        (x,) = batch
        for name, target in (("a", 1.0), ("b", -1.0)):
            optimizers[name].zero_grad()
            loss = ((getattr(self, name)(x) - target * x.sum(1, keepdim=True)) ** 2).mean()
            loss.backward()
            optimizers[name].step()
        return {"loss": float(loss.detach())}


def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    return x, x @ torch.randn(3, 2, generator=g) + 0.1 * torch.randn(64, 2, generator=g)


def pair_data() -> torch.Tensor:
    return torch.randn(64, 3, generator=torch.Generator().manual_seed(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(worker: str, folder: Path, world_size: int = 2, timeout: float = 120) -> list[tuple[str, str]]:
    """Run the script ``worker`` as ``world_size`` processes, as torchrun would; (stdout, stderr) of each rank.

    Each gets ``folder`` and the tests folder as arguments; a rank that fails fails the test with its stderr.
    """
    script = folder / "worker.py"
    script.write_text(worker)
    port, procs = _free_port(), []
    for rank in range(world_size):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(script), str(folder), str(Path(__file__).parent)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=timeout) for p in procs]
    for rank, (p, (_, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"rank {rank}: {err[-3000:]}"
    return outs


def test_shard_splits_a_global_batch_disjointly():
    idx = torch.arange(10)
    parts = [distributed.shard(idx, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx) and [len(p) for p in parts] == [4, 3, 3]


def test_single_process_setup_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.setup("cpu")
    assert info.world_size == 1 and info.is_main and not info.distributed
    assert distributed.any_across(True, info) and not distributed.any_across(False, info)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_combined_batch(tmp_path):
    outs = run_ranks(WORKER, tmp_path)
    assert "12/12" in outs[0][1] and "12/12" not in outs[1][1]  # progress on rank 0 only
    assert (tmp_path / "ck0" / "model.safetensors").is_file() and not (tmp_path / "ck1").exists()

    torch.manual_seed(0)
    single = Regression()
    fit(single, regression_data(), steps=12, batch_size=16, lr=0.05, seed=0)  # 2 x 8 = 16
    torch.manual_seed(0)
    pair = Pair()
    fit(pair, pair_data(), steps=12, batch_size=16, lr=0.05, seed=0)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, model in (("regression", single), ("pair", pair)):
        for k, v in model.state_dict().items():
            assert torch.equal(ranks[0][name][k], ranks[1][name][k]), (name, k)  # the ranks agree exactly
            assert torch.allclose(ranks[0][name][k], v, atol=1e-5), (name, k, ranks[0][name][k], v)
        assert not torch.allclose(model.state_dict()[next(iter(model.state_dict()))],
                                  _initial(name)[next(iter(model.state_dict()))])  # training moved them


def _initial(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return (Regression() if name == "regression" else Pair()).state_dict()
