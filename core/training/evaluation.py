"""Held-out loss evaluation and best-by-held-out checkpoint selection."""

from __future__ import annotations

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
    """Keeps a copy of the weights with the lowest held-out loss seen so far."""

    def __init__(self) -> None:
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, Any] | None = None

    def offer(self, step: int, loss: float, state: dict[str, Any]) -> bool:
        """Record ``state`` (copied) if ``loss`` beats the best so far; returns whether it did."""
        if self.best_loss is not None and loss >= self.best_loss:
            return False
        self.best_loss, self.best_step = float(loss), step
        self.best_state = {k: v.detach().clone() for k, v in state.items()}
        return True

    def as_dict(self) -> dict[str, Any]:
        """For a resumable state."""
        return {"best_loss": self.best_loss, "best_step": self.best_step, "best_state": self.best_state}

    def load(self, saved: dict[str, Any]) -> None:
        """Inverse of :meth:`as_dict`."""
        self.best_loss, self.best_step, self.best_state = saved["best_loss"], saved["best_step"], saved["best_state"]
