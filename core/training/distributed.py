"""torch.distributed for training loops: this process' place in a ``torchrun`` job, and the few collectives.

Every backend's loop gets a :class:`Distributed` from :func:`distributed_context` (which joins
the process group ``torchrun`` describes) and takes every step on every rank, so the
collectives here are always called by all ranks together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Distributed:
    """This process' place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes files, logs and shows progress (rank 0)."""
        return self.rank == 0


def distributed_context() -> Distributed:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on CUDA); rank 0 of 1 otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()  # without importing torch: a single process's cheap checks come first
    import torch.distributed as dist

    from tts_host.training.devices import cuda_wanted

    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda_wanted() else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def barrier(context: Distributed) -> None:
    """Wait until every rank gets here (nothing to wait for in a single process)."""
    if context.world > 1:
        import torch.distributed as dist

        dist.barrier()


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group; ``(0, 1)`` outside ``torchrun``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_rows(count: int, context: Distributed) -> range:
    """This rank's contiguous share of a global batch of ``count`` rows (empty when ``count`` < world)."""
    return range(count * context.rank // context.world, count * (context.rank + 1) // context.world)


def sum_across(values: Sequence[float], context: Distributed, device: Any = None) -> list[float]:
    """Each of ``values`` summed over all ranks (float64, on ``device`` for nccl)."""
    if context.world == 1:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    total = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def broadcast_from_main(tensors: Iterable[Any], context: Distributed) -> None:
    """Overwrite each of ``tensors`` (in place, the same list on every rank) with rank 0's values."""
    if context.world == 1:
        return
    import torch.distributed as dist

    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def average_gradients(parameters: Iterable[Any]) -> None:
    """All-reduce and average gradients across ranks (a no-op outside ``torchrun``).

    A parameter without a gradient on this rank (say, a rank whose share of the batch was
    empty) joins with zeros when any other rank has one, so every rank makes the same calls.
    """
    import torch
    import torch.distributed as dist

    _, world = rank_and_world()
    if world == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    for parameter, flag in zip(params, present.tolist()):
        if not flag:
            continue
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad)
        parameter.grad /= world
