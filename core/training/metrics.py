"""Metric logging: TensorBoard scalars and a loss-curve PNG in an optional log folder (rank 0 only)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


class MetricLogger:
    """Collects scalars per step; writes TensorBoard events and ``loss.png`` when given a folder."""

    def __init__(self, log_dir: Path | None, *, enabled: bool = True) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None and enabled else None
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def log(self, step: int, **values: float) -> None:
        """Record ``name=value`` scalars at ``step``."""
        for name, value in values.items():
            self.history[name].append((step, float(value)))
            if self._writer is not None:
                self._writer.add_scalar(name, float(value), step)

    def close(self) -> Path | None:
        """Flush TensorBoard and draw the loss curves; returns the PNG path (or None without a folder)."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.plot(self.log_dir / "loss.png")

    def plot(self, path: Path) -> Path:
        """A PNG with one curve per recorded scalar whose name contains ``loss``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 4.5))
        for name, points in sorted(self.history.items()):
            if "loss" in name and points:
                steps, values = zip(*points)
                axes.plot(steps, values, marker="o" if len(points) < 20 else None, label=name)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path
