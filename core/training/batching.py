"""Length-bucketed batches, replay mixing and distributed sharding of clip indices."""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

T = TypeVar("T")


def length_bucketed_batches(lengths: Sequence[float], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of indices with similar lengths (less padding), in a random order.

    Indices are shuffled, sorted by length within windows of 50 batches, cut into batches,
    and the batches are shuffled: every epoch differs, and padding stays small.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def mix_replay(new: Sequence[T], earlier: Sequence[T], share: float, rng: random.Random) -> list[T]:
    """``new`` plus earlier speakers' items so that they make up ``share`` of the result (shuffled).

    ``share`` 0.2 with 80 new items adds 20 earlier ones (drawn without replacement while
    there are enough, with replacement beyond).
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"replay share must be in [0, 1), got {share}")
    if share == 0.0 or not earlier:
        return list(new)
    count = max(1, round(share / (1.0 - share) * len(new)))
    if count <= len(earlier):
        replay = rng.sample(list(earlier), count)
    else:
        replay = [rng.choice(list(earlier)) for _ in range(count)]
    mixed = list(new) + replay
    rng.shuffle(mixed)
    return mixed
