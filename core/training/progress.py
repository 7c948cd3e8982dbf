"""A rich progress bar for training steps that shows the running loss."""

from __future__ import annotations

from typing import Any


class StepProgress:
    """``with StepProgress(total, start, "B") as bar: bar.advance(loss)``; silent when disabled."""

    def __init__(self, total: int, start: int = 0, description: str = "training", *, enabled: bool = True) -> None:
        self.total, self.start, self.description, self.enabled = total, start, description, enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "StepProgress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(), transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, completed=self.start, loss="-")
        return self

    def advance(self, loss: float) -> None:
        """One step done, with its loss."""
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=f"{loss:.4f}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
