"""``tts-host finetune`` and ``tts-host speak``: train a voice and use it."""

from __future__ import annotations

import click


@click.group("finetune", invoke_without_command=False)
def finetune_group() -> None:
    """Fine-tune a backend on a speaker's recordings, on top of a base or an earlier voice."""


@click.group("speak")
def speak_group() -> None:
    """Synthesise speech with a voice from the library."""


COMMANDS = [finetune_group, speak_group]
