"""The dataset summary: kept and rejected minutes, per-reason counts, duration histogram, score plot."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_host.data.dataset import REASONS, PreparedDataset


@dataclass
class DatasetReport:
    """Figures of one prepared dataset, ready to print or serialise."""

    speaker: str
    sample_rate: int
    source_format: str
    kept_clips: int
    kept_seconds: float
    train_clips: int
    heldout_clips: int
    rejected: int
    rejected_seconds: float
    reasons: dict[str, dict[str, float]]  # reason -> {"count", "seconds"}
    histogram: list[tuple[float, float, int]]  # (from seconds, to seconds, clips)
    notes: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one detail line
    rejects: list[tuple[str, str, str]] = field(default_factory=list)  # (source, reason, detail)
    reused: int = 0
    processed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        from dataclasses import asdict

        return asdict(self)


def build_report(dataset: PreparedDataset, bin_seconds: float = 1.0) -> DatasetReport:
    """Summarise ``dataset``: totals, reasons with counts and seconds, a duration histogram."""
    reasons: dict[str, dict[str, float]] = {}
    examples: dict[str, str] = {}
    for reject in dataset.rejects:
        entry = reasons.setdefault(reject.reason, {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + reject.duration, 3)
        examples.setdefault(reject.reason, reject.detail)
    durations = [clip.duration for clip in dataset.clips]
    top = max(durations, default=0.0)
    bins = Counter(int(duration // bin_seconds) for duration in durations)
    histogram = [(index * bin_seconds, (index + 1) * bin_seconds, bins.get(index, 0))
                 for index in range(int(math.floor(top / bin_seconds)) + 1)] if durations else []
    return DatasetReport(
        speaker=dataset.speaker, sample_rate=dataset.sample_rate, source_format=dataset.source_format,
        kept_clips=len(dataset.clips), kept_seconds=round(sum(durations), 3),
        train_clips=len(dataset.train), heldout_clips=len(dataset.heldout), rejected=len(dataset.rejects),
        rejected_seconds=round(sum(reject.duration for reject in dataset.rejects), 3),
        reasons=dict(sorted(reasons.items(), key=lambda item: -item[1]["count"])), histogram=histogram,
        notes=list(dataset.notes), examples=examples, reused=dataset.reused, processed=dataset.processed,
        rejects=[(reject.source, reject.reason, reject.detail) for reject in dataset.rejects])


def render_report(report: DatasetReport, console: Any, max_rejects: int = 20) -> None:
    """Print ``report`` with rich: totals, reasons, each reject (up to ``max_rejects``), histogram, notes."""
    from rich.table import Table

    console.print(f"[bold]{report.speaker}[/]: {report.kept_clips} clips kept, {report.kept_seconds / 60:.2f} min "
                  f"(train {report.train_clips}, held-out {report.heldout_clips}); {report.rejected} rejected, "
                  f"{report.rejected_seconds / 60:.2f} min; {report.sample_rate} Hz, format {report.source_format}")
    if report.reasons:
        table = Table(title="rejected", title_justify="left")
        for column in ("reason", "count", "minutes", "meaning", "example"):
            table.add_column(column, justify="right" if column in ("count", "minutes") else "left")
        for reason, entry in report.reasons.items():
            table.add_row(reason, str(int(entry["count"])), f"{entry['seconds'] / 60:.2f}", REASONS.get(reason, ""),
                          report.examples.get(reason, ""))
        console.print(table)
        shown = report.rejects[:max_rejects]
        table = Table(title=f"rejects ({len(shown)} of {len(report.rejects)})", title_justify="left")
        for column in ("source", "reason", "detail"):
            table.add_column(column)
        for row in shown:
            table.add_row(*row)
        console.print(table)
    if report.histogram:
        table = Table(title="clip durations", title_justify="left")
        table.add_column("seconds")
        table.add_column("clips", justify="right")
        table.add_column("")
        peak = max(count for _, _, count in report.histogram) or 1
        for low, high, count in report.histogram:
            table.add_row(f"{low:g}-{high:g}", str(count), "█" * math.ceil(30 * count / peak) if count else "")
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    if report.processed or report.reused:
        console.print(f"source files: {report.processed} processed, {report.reused} unchanged and reused")


def plot_report(dataset: PreparedDataset, path: Path | str) -> Path:
    """Write a PNG: the duration histogram and each clip's scores (kept and rejected) against thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = dataset.settings
    panels = [("speech_ratio", "min_speech_ratio"), ("snr_db", "min_snr_db"),
              ("spectral_entropy", "max_spectral_entropy")]
    figure, axes = plt.subplots(1, 1 + len(panels), figsize=(16, 4))
    durations = [clip.duration for clip in dataset.clips]
    axes[0].hist(durations, bins=max(1, int(settings.get("max_whole_seconds", 30))), range=(0, settings.get("max_whole_seconds", 30)),
                 color="tab:blue")
    axes[0].set(title=f"{dataset.speaker}: {len(durations)} clips", xlabel="duration (s)", ylabel="clips")
    for axis, (score, threshold) in zip(axes[1:], panels):
        kept = [clip.scores[score] for clip in dataset.clips if score in clip.scores]
        rejected = [reject.scores[score] for reject in dataset.rejects if score in reject.scores]
        axis.scatter(range(len(kept)), kept, s=10, label="kept", color="tab:green")
        axis.scatter(range(len(kept), len(kept) + len(rejected)), rejected, s=10, label="rejected", color="tab:red")
        axis.axhline(settings[threshold], color="black", linestyle="--", label=threshold)
        axis.set(title=score, xlabel="clip")
        axis.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
