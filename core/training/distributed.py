"""torch.distributed readiness: rank, world size, and who writes (rank 0)."""

from __future__ import annotations


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside ``torchrun``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Whether this process writes checkpoints, logs and the library (rank 0)."""
    return rank_and_world()[0] == 0


def average_gradients(parameters) -> None:
    """All-reduce and average gradients across ranks (a no-op outside ``torchrun``)."""
    import torch.distributed as dist

    _, world = rank_and_world()
    if world == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world
