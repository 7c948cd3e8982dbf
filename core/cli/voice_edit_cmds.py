"""Commands that make a voice or change its own files: ``voices add`` (a zero-shot clone), ``voices set`` (its
speech settings, :mod:`tts_host.voice_settings`) and ``voices consent`` (its consent on record, :mod:`tts_host.consent`).
"""

from __future__ import annotations

from pathlib import Path

import click

from tts_host.cli.consent_options import consent_options, consent_record
from tts_host.cli.library_cmds import open_library
from tts_host.errors import TTSHostError

PRECISIONS = "fp32|bf16|int8"  # tts_host.contract.SPEECH_PRECISIONS, without importing it at start-up


@click.command("add")
@click.argument("name")
@click.option("--backend", required=True, help="The backend that computes the conditioning.")
@click.option("--ref", "refs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A reference clip (repeat for several).")
@click.option("--base", "base_name", help="Clone with this base (default: the backend's only base).")
@click.option("--checkpoint", "checkpoint_id", type=int, help="Clone with this checkpoint instead of a base.")
@click.option("--language", help="The voice's language code (e.g. en).")
@click.option("--notes", default="", help="Free text kept with the voice.")
@click.option("--ref-text", default=None, help="Transcript of the reference clip(s) (backends that need it).")
@click.option("--component", "components", multiple=True, metavar="ROLE=NAME",
              help="Use component NAME in ROLE to compute the conditioning (e.g. speaker_encoder=NAME).")
@consent_options
def voices_add(name: str, backend: str, refs: tuple[Path, ...], base_name: str | None, checkpoint_id: int | None,
               language: str | None, notes: str, ref_text: str | None, components: tuple[str, ...],
               consent: str | None, source: str | None, consent_recording: Path | None) -> None:
    """Clone voice NAME zero-shot from reference clips: stores them and the backend's conditioning."""
    from tts_host.contract import CloneRequest, parse_component_choices
    from tts_host.speakers import check_name

    name = check_name(name, "voice")
    with open_library() as lib:
        if lib.has_voice(name):
            raise TTSHostError(f"a voice named '{name}' already exists (rename or remove it first)")
        lib.backend(backend)
        if checkpoint_id is not None:
            model = lib.checkpoint(checkpoint_id)
        elif base_name:
            model = lib.base(base_name)
        else:
            bases = lib.bases(backend)
            if len(bases) != 1:
                found = ", ".join(b.name for b in bases) or "none"
                raise TTSHostError(f"backend '{backend}' has {len(bases)} bases in the library ({found}): "
                                   "choose one with --base, or add one with `tts-host base add`")
            model = bases[0]
        request = CloneRequest(name, list(refs), ref_text=ref_text, language=language, notes=notes,
                               components=parse_component_choices(components, "--component"),
                               consent=consent_record(consent, source, consent_recording))
        voice = lib.backend(backend).clone(lib, model, request)
        click.echo(f"added voice '{voice.name}' ({backend}, {model.label}, {len(refs)} reference clip(s))")


@click.command("set")
@click.argument("name")
@click.option("--precision", required=True, metavar=PRECISIONS,
              help="The voice's default speech precision (speak and the server use it when a request names none).")
def voices_set(name: str, precision: str) -> None:
    """Set voice NAME's speech settings; refused when its backend cannot speak that way."""
    from tts_host.voice_settings import set_speech_precision

    with open_library() as lib:
        voice = set_speech_precision(lib, name, precision)
    click.echo(f"voice '{voice.name}' speaks in {precision} unless a request names a precision")


@click.command("consent")
@click.argument("name")
@consent_options
def voices_consent(name: str, consent: str | None, source: str | None, consent_recording: Path | None) -> None:
    """Put the speaker's consent on record for voice NAME (replacing the record it had)."""
    from tts_host.consent import consent_of, set_consent

    record = consent_record(consent, source, consent_recording)
    if record is None:
        raise TTSHostError("voices consent: give the speaker's statement with --consent")
    with open_library() as lib:
        had = consent_of(lib, lib.voice(name)) is not None
        voice = set_consent(lib, name, record)
    recording = " and recording" if record.recording is not None else ""
    click.echo(f"{'replaced' if had else 'recorded'} consent{recording} for voice '{voice.name}'")


VOICE_COMMANDS = [voices_add, voices_set, voices_consent]
