"""``tts-host base``, ``tts-host voices`` and ``tts-host library``: the voice library."""

from __future__ import annotations

import click


@click.group("base")
def base_group() -> None:
    """Base models: import a published model folder, build one offline, verify, remove."""


@click.group("voices")
def voices_group() -> None:
    """Voices: list, show, clone from reference clips, verify, repair, export and import."""


@click.group("library")
def library_group() -> None:
    """The voice library as a whole: garbage collection and integrity."""


COMMANDS = [base_group, voices_group, library_group]
