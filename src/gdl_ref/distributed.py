"""Data-parallel training under ``torchrun``: the helpers ``fit`` uses.

``torchrun --nproc_per_node=K script.py`` starts K copies of a script with RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT set. ``fit`` sees them, joins the process group (NCCL on CUDA, gloo on CPU),
gives every process the same shuffled order of the data and its own share of each global batch
(like ``DistributedSampler``), and averages gradients across processes with
``DistributedDataParallel`` (Li et al., 2020, "PyTorch Distributed", VLDB). With K processes of batch
b each and a loss that is a mean over the batch, the averaged gradient is the gradient of the mean
loss over the combined batch of K b examples:

    g = (1/K) sum_k (1/b) sum_{i in B_k} grad l_i = (1/(K b)) sum_{i in B} grad l_i

so K processes train exactly the model one process trains with batch K b. Only rank 0 writes
checkpoints and shows progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["DistInfo", "setup", "env_world_size", "shard", "wrap", "broadcast_module",
           "average_gradients_before_step", "any_across", "gather_to_main", "barrier", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: rank in 0..world_size-1, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when absent)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str | torch.device = "cpu") -> DistInfo:
    """Join the process group if torchrun started us (or one is already initialised); else one process.

    Backend: NCCL for CUDA devices, gloo for CPU. On CUDA each process takes ``cuda:LOCAL_RANK``.
    """
    device = torch.device(device)
    if not dist.is_available() or (env_world_size() <= 1 and not dist.is_initialized()):
        return DistInfo(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


# --8<-- [start:shard]
def shard(index: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's share of a global batch of indices: contiguous, sizes differing by at most one.

    Every rank draws the same permutation (same seed, same epoch), so the shares are disjoint and
    together make the global batch, as with ``torch.utils.data.DistributedSampler``.
    """
    return index.tensor_split(world_size)[rank]  # (B / K,) of the global (B,)
# --8<-- [end:shard]


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around ``module`` when distributed (it broadcasts rank 0's weights)."""
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank (DDP does this itself for the default step)."""
    if info.distributed:
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


def average_gradients_before_step(optimizer: torch.optim.Optimizer, info: DistInfo) -> None:
    """Make ``optimizer.step()`` first average its gradients over ranks: g <- (1/K) sum_k g_k.

    For models that own their training step (GANs, EBMs), where DDP's forward hooks do not apply.
    """
    if not info.distributed:
        return

    def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad.div_(info.world_size)

    optimizer.register_step_pre_hook(hook)


def any_across(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is True on any (so all ranks stop at the same step)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0, as a list indexed by rank (None on the other ranks).

    A collective: every rank must call it at the same point. One process gets ``[obj]``.
    """
    if not info.distributed:
        return [obj]
    gathered: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
