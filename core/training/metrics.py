"""Metric logging: TensorBoard scalars and a loss-curve PNG in an optional log folder (rank 0 only).

Events are written synchronously, each record flushed as it is logged: a full disk is then a
one-line error from :meth:`MetricLogger.log` naming the events file, not a traceback from a
background writer thread and an empty file.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tts_host.oserrors import disk_full_errors


class MetricLogger:
    """Collects scalars per step; writes TensorBoard events and ``loss.png`` when given a folder."""

    def __init__(self, log_dir: Path | None, *, enabled: bool = True) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None and enabled else None
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._file = None
        self._records = None
        if self.log_dir is not None:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.summary.writer.record_writer import RecordWriter

            self.events_path = self.log_dir / (f"events.out.tfevents.{int(time.time()):010d}."
                                               f"{socket.gethostname()}.{os.getpid()}.0")
            with disk_full_errors(self.events_path):
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self._file = open(self.events_path, "wb")
                self._records = RecordWriter(self._file)
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        with disk_full_errors(self.events_path):
            self._records.write(event.SerializeToString())
            self._file.flush()

    def log(self, step: int, **values: float) -> None:
        """Record ``name=value`` scalars at ``step``."""
        for name, value in values.items():
            self.history[name].append((step, float(value)))
        if self._records is not None and values:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary

            summary = Summary(value=[Summary.Value(tag=name, simple_value=float(value))
                                     for name, value in values.items()])
            self._write(Event(wall_time=time.time(), step=step, summary=summary))

    def close(self) -> Path | None:
        """Close the events file and draw the loss curves; returns the PNG path (or None without a folder)."""
        if self._file is None:
            return None
        with disk_full_errors(self.events_path):
            self._file.close()
        self._file = self._records = None
        png = self.log_dir / "loss.png"
        with disk_full_errors(png):
            return self.plot(png)

    def plot(self, path: Path) -> Path:
        """A PNG with one curve per recorded scalar whose name contains ``loss``."""
        from tts_host.charts import png_chart

        with png_chart(path, (8, 4.5)) as axes:
            for name, points in sorted(self.history.items()):
                if "loss" in name and points:
                    steps, values = zip(*points)
                    axes.plot(steps, values, marker="o" if len(points) < 20 else None, label=name)
            axes.set_xlabel("step")
            axes.set_ylabel("loss")
            axes.grid(alpha=0.3)
            axes.legend()
        return path
