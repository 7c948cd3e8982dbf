"""PNG charts drawn off-screen with matplotlib (imported only when a chart is drawn)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@contextmanager
def png_chart(path: Path, size: tuple[float, float]) -> Iterator[Axes]:
    """The axes of a new ``size``-inch figure; on leaving the block it is laid out and written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=size)
    try:
        yield axes
        figure.tight_layout()
        figure.savefig(Path(path), dpi=100)
    finally:
        plt.close(figure)
