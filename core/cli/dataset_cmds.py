"""``tts-host dataset``: turn a speaker's recordings into a clean, checked, cached dataset."""

from __future__ import annotations

import click


@click.group("dataset")
def dataset_group() -> None:
    """Datasets: ingest, clean, slice and filter recordings (prepare), and inspect the result."""


COMMANDS = [dataset_group]
