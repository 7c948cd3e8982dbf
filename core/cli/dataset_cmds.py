"""``tts-host dataset``: turn a speaker's recordings into a clean, checked, cached dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tts_host.data.formats import FORMATS


@click.group("dataset")
def dataset_group() -> None:
    """Datasets: ingest, clean, slice and filter recordings (prepare), and inspect the result."""


@dataset_group.command("prepare")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--speaker", required=True,
              help="Name of the speaker these recordings belong to (voice-name rules: no '/', '\\', '..').")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created; re-running into it reuses unchanged clips).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Source format: LJSpeech metadata.csv, coqui CSV, GPT-SoVITS .list, or a plain folder.")
@click.option("--sample-rate", type=int, default=None, help="Sample rate of the prepared clips [default: 22050].")
@click.option("--language", default=None, help="Language of clips whose source names none [default: en].")
@click.option("--backend", default=None, help="Take thresholds from this backend's preset YAML (with --preset).")
@click.option("--preset", default=None, help="Preset of --backend whose 'data:' section sets thresholds.")
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="A YAML file whose 'data:' section overrides thresholds.")
@click.option("--min-seconds", type=float, default=None, help="Shortest clip kept [default: 2].")
@click.option("--max-seconds", type=float, default=None, help="Longest sliced clip [default: 12].")
@click.option("--workers", type=int, default=None, help="Decoding processes [default: one per CPU core].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of tables.")
def prepare_command(source: Path, speaker: str, out_dir: Path, fmt: str, sample_rate: int | None,
                    language: str | None, backend: str | None, preset: str | None, config: Path | None,
                    min_seconds: float | None, max_seconds: float | None, workers: int | None,
                    as_json: bool) -> None:
    """Ingest, clean, slice, filter and split SOURCE (a folder or list file) into OUT.

    \b
    Audio: wav, flac, ogg/opus, mp3, aiff decode natively; m4a, aac, mp4, wma, webm need FFmpeg.
    Files with a transcript are kept whole (trimmed); files without one are sliced at pauses.
    Re-running on unchanged input reuses every clip. Thresholds: docs/datasets.md.
    """
    from tts_host.data.errors import DatasetError
    from tts_host.data.prepare import prepare_dataset
    from tts_host.data.settings import load_settings

    if bool(backend) != bool(preset):
        raise DatasetError("--backend and --preset go together")
    if workers is not None and workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    settings = load_settings(config, backend=backend, preset=preset,
                             overrides={"min_seconds": min_seconds, "max_seconds": max_seconds})
    dataset = prepare_dataset(source, out_dir, speaker, sample_rate, fmt=fmt, language=language,
                              settings=settings, workers=workers, progress=not as_json)
    _show(dataset, as_json)


@dataset_group.command("inspect")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="Also write a PNG: duration histogram and per-clip scores.")
@click.option("--all-rejects", is_flag=True, help="List every reject (default: the first 20).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of tables.")
def inspect_command(dataset_dir: Path, plot: Path | None, all_rejects: bool, as_json: bool) -> None:
    """Print the summary of a prepared dataset again (and optionally plot it)."""
    from tts_host.data.dataset import load_prepared

    dataset = load_prepared(dataset_dir)
    _show(dataset, as_json, max_rejects=None if all_rejects else 20)
    if plot is not None:
        from tts_host.data.report import plot_report

        written = plot_report(dataset, plot)
        if not as_json:
            click.echo(f"plot written to {written}")


def _show(dataset, as_json: bool, max_rejects: int | None = 20) -> None:
    from tts_host.data.report import build_report, render_report

    report = build_report(dataset)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
        return
    from rich.console import Console

    render_report(report, Console(), max_rejects=len(report.rejects) if max_rejects is None else max_rejects)


COMMANDS = [dataset_group]
