"""Naming what changed in a protected SoVITS file: the first tensor whose values differ from the base's."""

from __future__ import annotations

from pathlib import Path


def first_changed_tensor(base_file: Path, changed_file: Path) -> str | None:
    """``tensor NAME differs (k of n values)`` for the first differing tensor of two safetensors files."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(base_file), framework="pt") as base, safe_open(str(changed_file), framework="pt") as changed:
            names, other = set(base.keys()), set(changed.keys())
            if names != other:
                extra = sorted(names ^ other)[0]
                return f"tensor {extra} is in only one of the two files"
            for name in sorted(names):
                a, b = base.get_tensor(name), changed.get_tensor(name)
                if a.shape != b.shape:
                    return f"tensor {name} has shape {list(b.shape)}, not {list(a.shape)}"
                unequal = int((a != b).sum()) if a.dtype == b.dtype else a.numel()
                if unequal:
                    return f"tensor {name} differs ({unequal} of {a.numel()} values)"
    except (SafetensorError, OSError, RuntimeError):
        return None
    return None
