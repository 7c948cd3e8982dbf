"""``tts-host voices set``: a voice's own speech settings (:mod:`tts_host.voice_settings`)."""

from __future__ import annotations

import click

from tts_host.cli.library_cmds import open_library
from tts_host.contract import SPEECH_PRECISIONS


@click.command("set")
@click.argument("name")
@click.option("--precision", required=True, metavar="|".join(SPEECH_PRECISIONS),
              help="The voice's default speech precision (speak and the server use it when a request names none).")
def voices_set(name: str, precision: str) -> None:
    """Set voice NAME's speech settings; refused when its backend cannot speak that way."""
    from tts_host.voice_settings import set_speech_precision

    with open_library() as lib:
        voice = set_speech_precision(lib, name, precision)
    click.echo(f"voice '{voice.name}' speaks in {precision} unless a request names a precision")
