"""``--consent``, ``--source`` and ``--consent-recording``: the options that put a speaker's consent on record
(``tts-host finetune`` and ``tts-host voices add``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.consent import Consent


def consent_options(command: Callable) -> Callable:
    """``--consent``, ``--source`` and ``--consent-recording``: the speaker's consent, kept with the voice."""
    command = click.option("--consent-recording", type=click.Path(path_type=Path, dir_okay=False), default=None,
                           help="A recording of the speaker giving consent, stored with the voice.")(command)
    command = click.option("--source", default=None, help="Where the voice's audio came from.")(command)
    return click.option("--consent", default=None, help="The speaker's consent statement, stored with the voice.")(
        command)


def consent_record(statement: str | None, source: str | None, recording: Path | None) -> Consent | None:
    """The :class:`~tts_host.consent.Consent` the options give (``None`` without a statement)."""
    from tts_host.consent import Consent

    if statement is None:
        if source is not None or recording is not None:
            raise TTSHostError("--source and --consent-recording go with --consent (the speaker's statement)")
        return None
    return Consent(statement, source or "", recording)
