"""``tts-host finetune`` and ``tts-host speak``: train a voice and use it, for any backend.

``finetune`` and ``speak`` are generic over backends: they resolve ``--backend`` (or the
voice's backend) through the plugin host and call the backend's ``finetune`` / ``speak``
methods with the keyword arguments documented in docs/backends/xtts.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from tts_host.errors import TTSHostError


def _backend(name: str):
    from tts_host.host import get_host

    backend = get_host().build_backend(name)
    return backend


def _require(backend, method: str):
    if not callable(getattr(backend, method, None)):
        raise TTSHostError(f"backend '{backend.name}' does not support {method}")
    return getattr(backend, method)


def _given(**options):
    """The options the user gave (backend-specific ones are passed only when set)."""
    return {name: value for name, value in options.items() if value is not None}


def _supported(method, backend_name: str, options: dict) -> dict:
    """``options``, or a one-line error naming those the backend's ``method`` does not take."""
    import inspect

    parameters = inspect.signature(method).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    unknown = [name for name in options if name not in parameters]
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        raise TTSHostError(f"backend '{backend_name}' does not take {flags}")
    return options


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
def finetune_command(backend_name: str, speaker: str, data: Path, start: str | None, base: str | None,
                     config: Path | None, epochs: int | None, batch_size: int | None, lr: float | None,
                     replay: float | None, resume: bool, restart: bool, allow_empty_text: bool,
                     log_dir: Path | None, quiet: bool, lora: int | None) -> None:
    """Fine-tune a backend on a speaker's recordings, on top of a base or an earlier voice.

    A rerun of an interrupted fine-tune needs --resume (continue) or --restart (start again).
    """
    from tts_host.training.allocator import reexec_with_training_allocator

    reexec_with_training_allocator()  # once, before torch loads: keeps freed training buffers mapped
    from tts_host.speakers.library import Library

    backend = _backend(backend_name)
    finetune = _require(backend, "finetune")
    extra = _supported(finetune, backend_name, _given(lora=lora, restart=restart or None,
                                                      allow_empty_text=allow_empty_text or None))
    with Library() as library:
        try:
            outcome = finetune(library, speaker=speaker, data=data, start=start, base=base, config=config,
                               epochs=epochs, batch_size=batch_size, lr=lr, replay=replay, resume=resume,
                               log_dir=log_dir, progress=not quiet, **extra)
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
@click.option("--max-length", type=int, default=None, help="Longest token sequence (prompt included).")
def speak_command(voice: str, text: str, out: Path, language: str | None, stream: bool, seed: int,
                  temperature: float | None, top_p: float | None, top_k: int | None,
                  repetition_penalty: float | None, max_length: int | None) -> None:
    """Synthesise speech with a voice from the library (long texts a sentence at a time)."""
    from tts_host.speakers.library import Library

    with Library() as library:
        record = library.voice(voice)
        speak = _require(_backend(record.backend), "speak")
        sampling = _supported(speak, record.backend, _given(temperature=temperature, top_p=top_p, top_k=top_k,
                                                            repetition_penalty=repetition_penalty,
                                                            max_length=max_length))
        request = dict(voice=voice, text=text, language=language, stream=stream, seed=seed, **sampling)
        if str(out) == "-":
            _speak_to_stdout(speak, library, request)
        else:
            _echo_lines(speak(library, out=out, **request).summary_lines())


def _speak_to_stdout(speak: Callable[..., Any], library: Any, request: dict[str, Any]) -> None:
    """``speak`` into a temp wav whose bytes then go to standard output; every message goes to stderr."""
    import contextlib
    import sys
    import tempfile

    stdout = click.get_binary_stream("stdout")
    with tempfile.TemporaryDirectory(prefix="tts-host-speak-") as tmp:
        wav = Path(tmp) / "speech.wav"
        with contextlib.redirect_stdout(sys.stderr):
            result = speak(library, out=wav, **request)
        stdout.write(wav.read_bytes())
        stdout.flush()
    for line in result.summary_lines():
        click.echo(line.replace(str(wav), "standard output"), err=True)


COMMANDS = [finetune_command, speak_command]
