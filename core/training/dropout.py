"""Dropout with a faster mask: the same Bernoulli keep/drop law as ``torch.nn.Dropout``, drawn on every core.

On a CPU, ``torch.nn.Dropout`` draws its mask one element at a time from a single Mersenne
Twister, which costs a GPT training step more than its attention. Here each mask is drawn with
numpy's SFC64 generator in fixed-size blocks spread over torch's threads (numpy releases the GIL),
from a seed taken from torch's own generator: ``torch.manual_seed`` still decides every mask,
so a seeded or resumed run repeats exactly. Each element is kept with probability ``1 - p``
(a float32 uniform compared with ``p``) and scaled by ``1 / (1 - p)``, as torch does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
import torch

_BLOCK = 1 << 18  # elements per independently seeded block: masks do not depend on the thread count


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A bool tensor of ``shape``: True with probability ``1 - p`` per element, seeded from torch's generator."""
    count = int(np.prod(shape))
    seed = int(torch.randint(0, 2**62, (1,)).item())
    uniform = np.empty(count, dtype=np.float32)
    blocks = range(-(-count // _BLOCK))

    def draw(block: int) -> None:
        generator = np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, block])))
        generator.random(dtype=np.float32, out=uniform[block * _BLOCK:(block + 1) * _BLOCK])

    workers = min(torch.get_num_threads(), len(blocks))
    if workers <= 1:
        for block in blocks:
            draw(block)
    else:
        list(_pool(workers).map(draw, blocks))
    return torch.from_numpy(uniform).reshape(shape) >= p


@lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="tts-host-dropout")


class _ApplyMask(torch.autograd.Function):
    """``x * keep * scale`` that keeps only the bool mask (one byte per element) for backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``torch.nn.functional.dropout`` with the parallel mask (CPU tensors; others use torch's own)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return torch.nn.functional.dropout(x, p, True)
    if p >= 1.0:
        return x * 0.0
    return _ApplyMask.apply(x, keep_mask(x.shape, p), 1.0 / (1.0 - p))


class Dropout(torch.nn.Module):
    """Drop-in replacement for ``torch.nn.Dropout`` drawing its mask with :func:`keep_mask`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero each element with probability ``p`` in training, scaling the rest by ``1 / (1 - p)``."""
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def replace_dropouts(module: torch.nn.Module) -> int:
    """Swap every ``torch.nn.Dropout`` in ``module`` for a :class:`Dropout` with the same ``p`` and mode; returns how many."""
    replaced = 0
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, Dropout(child.p).train(child.training))
                replaced += 1
    return replaced
