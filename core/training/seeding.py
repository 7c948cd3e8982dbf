"""Seeding and RNG state capture for python, numpy and torch (so a resumed run replays exactly)."""

from __future__ import annotations

import random
from typing import Any


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """The current state of every generator, as plain data and tensors (see :mod:`tts_host.training.state`)."""
    import numpy as np
    import torch

    version, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": _to_lists(random.getstate()),
        "numpy": {"version": version, "key": key, "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put every generator back to a state from :func:`capture_rng`."""
    import numpy as np
    import torch

    random.setstate(_to_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["version"], np.asarray(numpy_state["key"], dtype=np.uint32),
                         int(numpy_state["pos"]), int(numpy_state["has_gauss"]), float(numpy_state["cached"])))
    torch.set_rng_state(state["torch"].to("cpu", dtype=torch.uint8))


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
