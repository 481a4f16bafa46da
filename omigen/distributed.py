"""Several processes under ``torchrun``: who am I, set up the process group, shard, gather.

``torchrun --nproc_per_node=N ...`` starts N copies of a command with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` in their environment. The trainer (:mod:`omigen.train`) calls :func:`setup`,
which joins the process group (gloo on CPU, nccl on CUDA) and pins each process to its own GPU.
Every process trains on its own shard of each epoch; only the main process (rank 0) writes
files, which pipelines check with :func:`is_main_process`.

Importing this module is cheap: torch is imported only by the functions that need it.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    from torch import Tensor


class WorldInfo(NamedTuple):
    """This process's place among the processes of one run (a lone process is rank 0 of 1)."""

    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise OmigenInputError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _initialised() -> bool:
    # torch.distributed cannot be initialised unless somebody imported it, so an absent module
    # answers the question without importing torch.
    dist = sys.modules.get("torch.distributed")
    return bool(dist is not None and dist.is_available() and dist.is_initialized())


def world_info() -> WorldInfo:
    """Rank, world size and local rank: from the process group if there is one, else torchrun's environment."""
    local = _env_int("LOCAL_RANK", 0)
    if _initialised():
        import torch.distributed as dist

        return WorldInfo(dist.get_rank(), dist.get_world_size(), local)
    return WorldInfo(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), local)


def is_distributed() -> bool:
    """True when this process is one of several (launched by torchrun with more than one process)."""
    return world_info().world_size > 1


def is_main_process() -> bool:
    """True in the process that writes outputs: rank 0, or the only process."""
    return world_info().rank == 0


def setup(device: str) -> str:
    """Join the process group when launched as one of several processes; return this process's device.

    ``device`` is an already resolved name (``cpu``, ``cuda``, ``cuda:N``, ``mps``). Under torchrun
    with CUDA each process gets ``cuda:<LOCAL_RANK>``. A lone process is returned ``device`` unchanged.
    """
    info = world_info()
    if info.world_size <= 1:
        return device
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise OmigenInputError("this torch build has no torch.distributed, so it cannot train under torchrun")
    if device.startswith("cuda"):
        if info.local_rank >= torch.cuda.device_count():
            raise OmigenInputError(f"LOCAL_RANK {info.local_rank} but only {torch.cuda.device_count()} CUDA "
                                   "device(s) are visible")
        device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(info.local_rank)
    elif device == "mps":
        raise OmigenInputError("training on several processes needs CUDA or CPU, not mps")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_shutdown)
    return device


def _shutdown() -> None:
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # DDP wrappers sit in reference cycles; freed after the group is gone, they can abort the process.
        gc.collect()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op for a lone process)."""
    if _initialised():
        import torch.distributed as dist

        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj``, by rank (``[obj]`` for a lone process)."""
    if not _initialised():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(t: "Tensor") -> "Tensor":
    """The mean of ``t`` over processes (``t`` itself for a lone process)."""
    if not _initialised():
        return t
    import torch.distributed as dist

    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def shard(perm: "Tensor", rank: int, world_size: int) -> "Tensor":
    """This rank's share of one epoch's permutation, like ``torch.utils.data.DistributedSampler``.

    The permutation is padded by repeating its start to a multiple of ``world_size``, then rank
    ``r`` takes every ``world_size``-th element from position ``r``: shares are disjoint apart
    from the padding, equally long, and together cover every sample.
    """
    if world_size <= 1:
        return perm
    n = perm.shape[0]
    total = -(-n // world_size) * world_size
    if total > n:
        reps = -(-total // n)
        perm = perm.repeat(reps)[:total]
    return perm[rank:total:world_size]
