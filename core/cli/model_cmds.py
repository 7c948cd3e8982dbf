"""``tts-host finetune`` and ``tts-host speak``: train a voice and use it, for any backend.

Both build the request of :mod:`tts_host.contract` from their options and hand it to the
backend (``--backend`` or the voice's), built by the plugin host; every option means the same
thing for every backend, and a backend that cannot use one says so by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tts_host.cli.consent_options import consent_options, consent_record
from tts_host.cli.library_cmds import open_library
from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.contract import SpeakRequest
    from tts_host.speakers.library import Library
    from tts_host.speech import SpeechResult

COMPONENT_HELP = "Use component NAME in ROLE for this call (e.g. vocoder=xtts-hifigan-onnx); repeatable."


def _backend(name: str) -> Backend:
    from tts_host.host import get_host

    return get_host().build_backend(name)


def _echo_lines(lines: list[str], warnings: list[str] = ()) -> None:
    for line in lines:
        click.echo(line)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)


@click.command("finetune")
@click.option("--backend", "backend_name", required=True, help="Backend to train (e.g. xtts).")
@click.option("--speaker", required=True, help="Name of the speaker (and of the voice it becomes).")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="The speaker's recordings (folder or list file), or a prepared dataset folder.")
@click.option("--from", "start", default=None, help="Start from this voice's checkpoint (sequential fine-tune).")
@click.option("--base", default=None, help="Start from this base (default: the backend's only base).")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="YAML file of fine-tune settings.")
@click.option("--epochs", type=int, default=None, help="Passes over the training clips.")
@click.option("--batch-size", type=int, default=None, help="Clips per optimizer step.")
@click.option("--lr", type=float, default=None, help="Learning rate.")
@click.option("--replay", type=float, default=None, help="Share of earlier speakers' clips mixed into batches (0-1).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same fine-tune.")
@click.option("--restart", is_flag=True, help="Discard the saved progress of an interrupted run and start again.")
@click.option("--allow-empty-text", is_flag=True, help="Train on clips without a transcript (refused otherwise).")
@click.option("--log-dir", type=click.Path(path_type=Path), default=None,
              help="Write TensorBoard scalars and a loss-curve PNG here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--lora", "lora", type=int, default=None, help="Train a LoRA adapter of this rank (backends with LoRA).")
@click.option("--eval-earlier", is_flag=True,
              help="Before storing, score the earlier voices' speech on the new model (speaker similarity).")
@click.option("--max-forgetting", type=float, default=None, metavar="DROP",
              help="Refuse (store nothing) when an earlier voice's similarity drops by more (implies --eval-earlier).")
@click.option("--component", "components", multiple=True, metavar="ROLE=NAME", help=COMPONENT_HELP)
@consent_options
def finetune_command(backend_name: str, speaker: str, data: Path, start: str | None, base: str | None,
                     config: Path | None, epochs: int | None, batch_size: int | None, lr: float | None,
                     replay: float | None, resume: bool, restart: bool, allow_empty_text: bool,
                     log_dir: Path | None, quiet: bool, lora: int | None, eval_earlier: bool,
                     max_forgetting: float | None, components: tuple[str, ...],
                     consent: str | None, source: str | None, consent_recording: Path | None) -> None:
    """Fine-tune a backend on a speaker's recordings, on top of a base or an earlier voice.

    A rerun of an interrupted fine-tune needs --resume (continue) or --restart (start again).
    Under ``torchrun`` every process trains its share and only rank 0 writes the library.
    """
    from tts_host.training.allocator import reexec_with_training_allocator

    reexec_with_training_allocator()  # once, before torch loads: keeps freed training buffers mapped
    from tts_host.contract import FinetuneRequest, parse_component_choices

    request = FinetuneRequest(speaker, data, start=start, base=base, config=config, epochs=epochs,
                              batch_size=batch_size, learning_rate=lr, replay=replay, lora_rank=lora, resume=resume,
                              restart=restart, allow_empty_text=allow_empty_text, log_dir=log_dir,
                              progress=not quiet, components=parse_component_choices(components, "--component"),
                              consent=consent_record(consent, source, consent_recording),
                              eval_earlier=eval_earlier, max_forgetting=max_forgetting)
    backend = _backend(backend_name)
    with open_library() as library:
        try:
            outcome = backend.finetune(library, request)
        except KeyboardInterrupt:
            raise TTSHostError("interrupted: the state is saved; run the same command with --resume to continue")
    _echo_lines(outcome.summary_lines(), outcome.warnings)


@click.command("speak")
@click.option("--voice", required=True, help="Voice from the library.")
@click.argument("text")
@click.option("-o", "--output", "out", required=True,
              type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="WAV file to write ('-': standard output, messages then go to standard error).")
@click.option("--language", default=None, help="Language of the text (default: the voice's).")
@click.option("--stream", is_flag=True, help="Synthesise in chunks and report the time to first audio.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (backends that sample).")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling mass.")
@click.option("--top-k", type=int, default=None, help="Sample among the k likeliest tokens.")
@click.option("--repetition-penalty", type=float, default=None, help="Penalty on repeated tokens.")
@click.option("--max-length", type=int, default=None, help="Longest token sequence (prompt included; sovits: new semantic tokens per sentence).")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Speaking rate, 0.25-4.0 (backends that take it: sovits).")
@click.option("--precision", default=None, metavar="fp32|bf16|int8",
              help="Compute in fp32, bf16 (autocast) or int8 (quantised, CPU) where the backend can "
                   "(default: the voice's own, `voices set`, else fp32).")
@click.option("--component", "components", multiple=True, metavar="ROLE=NAME", help=COMPONENT_HELP)
def speak_command(voice: str, text: str, out: Path, language: str | None, stream: bool, seed: int,
                  temperature: float | None, top_p: float | None, top_k: int | None,
                  repetition_penalty: float | None, max_length: int | None, speed: float, precision: str | None,
                  components: tuple[str, ...]) -> None:
    """Synthesise speech with a voice from the library (long texts a sentence at a time)."""
    import dataclasses
    import tempfile

    from tts_host.contract import SpeakRequest, parse_component_choices

    given = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "repetition_penalty": repetition_penalty,
             "max_length": max_length}
    request = SpeakRequest(voice, text, out, language=language, stream=stream, seed=seed, speed=speed,
                           precision=precision, sampling={k: v for k, v in given.items() if v is not None},
                           components=parse_component_choices(components, "--component"))
    with open_library() as library:
        backend = _backend(library.voice(voice).backend)
        if str(out) != "-":
            _echo_lines(backend.speak(library, request).summary_lines())
            return
        with tempfile.TemporaryDirectory(prefix="tts-host-speak-") as tmp:
            wav = Path(tmp) / "speech.wav"
            result = _speak_quietly(backend, library, dataclasses.replace(request, out=wav))
            stdout = click.get_binary_stream("stdout")
            stdout.write(wav.read_bytes())
            stdout.flush()
    for line in result.summary_lines():
        click.echo(line.replace(str(wav), "standard output"), err=True)


def _speak_quietly(backend: Backend, library: Library, request: SpeakRequest) -> SpeechResult:
    """``backend.speak`` with anything printed sent to standard error (standard output carries the wav)."""
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        return backend.speak(library, request)


COMMANDS = [finetune_command, speak_command]
