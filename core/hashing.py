"""SHA-256 of files: large reads, and both cores when there are several files."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, TypeVar

CHUNK = 4 << 20  # hashlib releases the GIL on large buffers, so threads hash in parallel

T = TypeVar("T")


def sha256_file(path: Path | str) -> tuple[str, int]:
    """``(hex digest, size in bytes)`` of a file, read in large chunks."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def parallel_map(function: Callable[[T], object], items: Iterable[T], workers: int | None = None) -> list:
    """``[function(item) ...]`` on a thread pool sized to the CPU count (order kept)."""
    items = list(items)
    workers = workers or min(len(items), os.cpu_count() or 1) or 1
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))
