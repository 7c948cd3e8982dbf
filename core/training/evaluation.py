"""Held-out loss evaluation and best-by-held-out checkpoint selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable


def heldout_loss(model: Any, batches: Iterable[Any], loss_of_batch: Callable[[Any], Any]) -> float:
    """Mean loss over ``batches`` with the model in eval mode and no gradients; training mode is restored."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for batch in batches:
                total += float(loss_of_batch(batch))
                count += 1
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no held-out batches to evaluate")
    return total / count


class BestTracker:
    """Keeps the weights with the lowest held-out loss seen so far.

    With ``path`` the weights go to a training-state folder there (no second copy of a large
    model in memory, and they survive an interruption); without, a copy is kept in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self._state: dict[str, Any] | None = None

    def offer(self, step: int, loss: float, state: dict[str, Any]) -> bool:
        """Record ``state`` if ``loss`` beats the best so far; returns whether it did."""
        if self.best_loss is not None and loss >= self.best_loss:
            return False
        self.best_loss, self.best_step = float(loss), step
        if self.path is None:
            self._state = {k: v.detach().clone() for k, v in state.items()}
        else:
            from tts_host.training.state import save_state

            save_state(self.path, {k: v.detach() for k, v in state.items()})  # sharded: no full copy in memory
        return True

    @property
    def best_state(self) -> dict[str, Any] | None:
        """The best weights (read back from ``path`` when kept on disk), or None before any offer."""
        if self.best_step is None:
            return None
        if self.path is None:
            return self._state
        from tts_host.training.state import load_state

        return load_state(self.path)

    def restore_into(self, targets: dict[str, Any]) -> None:
        """Copy the best weights into the live tensors ``targets`` (a ``state_dict()``, or the trainable part of one)
        in place, from disk one tensor at a time when kept there."""
        if self.best_step is None:
            raise ValueError("no weights were offered yet")
        if self.path is None:
            for key, value in self._state.items():
                targets[key].copy_(value)
            return
        from tts_host.training.state import copy_state_into

        copy_state_into(self.path, targets)

    def as_dict(self) -> dict[str, Any]:
        """For a resumable state (the weights themselves only when kept in memory)."""
        return {"best_loss": self.best_loss, "best_step": self.best_step,
                "best_state": self._state if self.path is None else None}

    def load(self, saved: dict[str, Any]) -> None:
        """Inverse of :meth:`as_dict`."""
        self.best_loss, self.best_step = saved["best_loss"], saved["best_step"]
        self._state = saved.get("best_state")
