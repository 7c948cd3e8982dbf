"""The calls every backend answers, as typed requests and results shared by all backends.

The CLI and the Python API build these requests; :class:`~tts_host.backend.Backend`
takes them; the workflows in core (:mod:`tts_host.training.workflow`, :mod:`tts_host.synthesis`,
:mod:`tts_host.cloning`) carry them out. An option means the same thing for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    import numpy as np

    from tts_host.consent import Consent
    from tts_host.speakers.records import Checkpoint, Voice

ProgressCallback = Callable[[int, int, float], None]
"""Called after every optimizer step with ``(step, total_steps, loss)``."""

SAMPLING_OPTIONS: tuple[str, ...] = ("temperature", "top_p", "top_k", "repetition_penalty", "max_length")
SPEECH_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
"""What speech may compute in: ``bf16`` autocast, ``int8`` dynamically quantised weights (CPU); each backend
speaks in some of them (:attr:`tts_host.backend.Backend.speech_precisions`)."""


def parse_component_choices(items: Sequence[str] | Mapping[str, str], source: str) -> dict[str, str]:
    """``ROLE=NAME`` strings (or a mapping) as ``{role: name}``; anything else is a one-line error."""
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            role, sep, name = str(item).partition("=")
            if not sep or not role.strip() or not name.strip():
                raise TTSHostError(f"{source} {item!r}: expected ROLE=NAME, e.g. vocoder=xtts-hifigan-onnx")
            pairs.append((role.strip(), name.strip()))
    chosen: dict[str, str] = {}
    for role, name in pairs:
        if not isinstance(role, str) or not isinstance(name, str) or not name:
            raise TTSHostError(f"{source}: component choice {role!r}: {name!r} must map a role to a component name")
        if role in chosen and chosen[role] != name:
            raise TTSHostError(f"{source}: role '{role}' chosen twice ({chosen[role]}, {name})")
        chosen[role] = name
    return chosen


def check_precision(precision: object, source: str) -> str:
    """``precision`` if it is one of :data:`SPEECH_PRECISIONS`; anything else is a one-line error naming ``source``."""
    if precision not in SPEECH_PRECISIONS:
        raise TTSHostError(f"{source} must be one of {', '.join(SPEECH_PRECISIONS)}, got {precision!r}")
    return str(precision)


@dataclass(frozen=True)
class FinetuneRequest:
    """One fine-tune: a new speaker trained on ``data``, on top of ``start`` (a voice) or ``base``.

    ``epochs``, ``batch_size``, ``learning_rate`` and ``lora_rank`` override the ``config`` YAML,
    which overrides the backend's defaults; ``settings`` holds further backend settings by name.
    ``replay`` is the share of earlier speakers' clips mixed into training, ``components`` the
    components chosen by role in place of the composition's (e.g. ``{"vocoder": NAME}``).
    ``eval_earlier`` judges the earlier voices' speech on the new model before it is stored, and
    ``max_forgetting`` (implying it) refuses the fine-tune when one's speaker similarity drops by more
    (:mod:`tts_host.training.sound_check`).
    """

    speaker: str
    data: Path
    start: str | None = None
    base: str | None = None
    config: Path | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    replay: float | None = None
    lora_rank: int | None = None
    resume: bool = False
    restart: bool = False
    allow_empty_text: bool = False
    log_dir: Path | None = None
    progress: bool = True
    on_step: ProgressCallback | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    components: Mapping[str, str] = field(default_factory=dict)
    consent: Consent | None = None
    eval_earlier: bool = False
    max_forgetting: float | None = None

    def setting_overrides(self) -> dict[str, Any]:
        """The backend settings this request sets (``None`` means "not given")."""
        given = {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                 "lora_rank": self.lora_rank, **self.settings}
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class SpeakRequest:
    """Speech for ``text`` with library voice ``voice``, written as a wav to ``out``.

    ``sampling`` holds any of :data:`SAMPLING_OPTIONS` (unset: the model's defaults); a backend
    that does not take an option refuses it. ``on_chunk`` receives streamed audio as it is made.
    ``precision`` is one of :data:`SPEECH_PRECISIONS`; ``None`` means the voice's own default, else fp32
    (core's speech workflow resolves it before a backend sees the request).
    """

    voice: str
    text: str
    out: Path
    language: str | None = None
    stream: bool = False
    seed: int = 0
    precision: str | None = None
    sampling: Mapping[str, float | int] = field(default_factory=dict)
    components: Mapping[str, str] = field(default_factory=dict)
    on_chunk: Callable[[np.ndarray], None] | None = None
    speed: float = 1.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sampling) - set(SAMPLING_OPTIONS))
        if unknown:
            raise TTSHostError(f"unknown sampling option(s) {', '.join(unknown)} "
                               f"(known: {', '.join(SAMPLING_OPTIONS)})")
        if self.precision is not None:
            check_precision(self.precision, "--precision")
        if not 0.25 <= self.speed <= 4.0:
            raise TTSHostError(f"--speed must be between 0.25 and 4.0, got {self.speed}")


@dataclass(frozen=True)
class CloneRequest:
    """A zero-shot voice from reference clips; ``ref_text`` is their transcript (backends that use it)."""

    name: str
    references: Sequence[Path]
    ref_text: str | None = None
    language: str | None = None
    notes: str = ""
    components: Mapping[str, str] = field(default_factory=dict)
    consent: Consent | None = None


@dataclass(frozen=True)
class Speech:
    """What a backend's synthesis returns: mono float32 audio, its rate, and the first chunk's delay."""

    audio: np.ndarray
    sample_rate: int
    first_chunk_seconds: float | None = None


@dataclass
class FinetuneResult:
    """What a fine-tune stored and measured; ``checkpoint``/``voice`` are ``None`` on ranks other than 0.

    ``metrics`` follows one schema for every backend (see :mod:`tts_host.training.report`).
    """

    speakers: list[str]
    metrics: dict[str, Any]
    checkpoint: Checkpoint | None = None
    voice: Voice | None = None
    warnings: list[str] = field(default_factory=list)
    log_png: Path | None = None
    rank: int = 0

    def summary_lines(self) -> list[str]:
        """Lines the CLI prints (nothing on ranks other than 0)."""
        from tts_host.training.report import summary_lines

        if self.checkpoint is None or self.voice is None:
            return []
        rank = self.metrics.get("backend", {}).get("lora_rank")
        kind = f"LoRA rank {rank}; " if rank else ""
        lines = [f"stored {self.checkpoint.label} ({kind}speakers: {', '.join(self.speakers)}) "
                 f"and voice '{self.voice.name}'"]
        lines += summary_lines(self.metrics)
        if self.log_png:
            lines.append(f"logs: {self.log_png.parent} (TensorBoard scalars, {self.log_png.name})")
        return lines
