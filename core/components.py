"""What components declare, and the check that a composition of them fits.

A plugin registers a :class:`ComponentFactory` per component: its name, its kind, the
streams it accepts and produces, and an import path that builds it. Declarations are plain
data, so the host can list components and check a composition without importing torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence


COMPONENT_KINDS: tuple[str, ...] = (
    "codec",
    "text_encoder",
    "acoustic_model",
    "vocoder",
    "speaker_encoder",
)

STREAM_KINDS: tuple[str, ...] = (
    "text",
    "text_tokens",
    "waveform",
    "mel",
    "codec_tokens",
    "latents",
    "speaker_embedding",
)


@dataclass(frozen=True)
class Stream:
    """A description of data flowing between two components.

    ``sample_rate`` is the audio rate the stream refers to, ``hop_length`` the audio samples
    per frame, ``vocab_size`` the number of distinct token ids and ``dim`` the feature size
    (mel bins, latent channels, embedding size). ``None`` means "not constrained".
    """

    kind: str
    sample_rate: int | None = None
    hop_length: int | None = None
    vocab_size: int | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in STREAM_KINDS:
            raise ValueError(f"unknown stream kind {self.kind!r}; expected one of {', '.join(STREAM_KINDS)}")

    def describe(self) -> str:
        """A short human description, e.g. ``mel (80 bins, 22050 Hz, hop 256)``."""
        details = []
        if self.vocab_size is not None:
            details.append(f"{self.vocab_size} ids")
        if self.dim is not None:
            details.append(f"{self.dim} {'bins' if self.kind == 'mel' else 'dims'}")
        if self.sample_rate is not None:
            details.append(f"{self.sample_rate} Hz")
        if self.hop_length is not None:
            details.append(f"hop {self.hop_length}")
        return f"{self.kind} ({', '.join(details)})" if details else self.kind


def stream_mismatch(produced: Stream, accepted: Stream) -> str | None:
    """Why ``produced`` cannot feed an input that accepts ``accepted``; ``None`` if it can."""
    if produced.kind != accepted.kind:
        return f"kind {produced.kind} is not {accepted.kind}"
    for attribute, unit in (("sample_rate", " Hz"), ("hop_length", " samples hop"), ("dim", " dims")):
        have, want = getattr(produced, attribute), getattr(accepted, attribute)
        if have is not None and want is not None and have != want:
            return f"{have}{unit} where {want}{unit} is expected"
    if produced.vocab_size is not None and accepted.vocab_size is not None:
        if produced.vocab_size > accepted.vocab_size:
            return f"{produced.vocab_size} token ids do not fit a vocabulary of {accepted.vocab_size}"
    return None


def load_object(path: str) -> Any:
    """Import ``package.module:attribute`` and return the attribute."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"loader {path!r} is not of the form 'package.module:attribute'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ImportError(f"{module_name} has no attribute {attribute!r} (loader {path!r})") from exc


@dataclass(frozen=True)
class ComponentFactory:
    """A registered component: its declaration and how to build it.

    ``accepts`` maps input names to the streams each input takes; ``produces`` is the output.
    ``loader`` is either an import path ``module:callable`` (imported only when built) or a
    callable; calling it with ``**options`` returns the component.
    """

    name: str
    kind: str
    accepts: Mapping[str, Stream]
    produces: Stream
    loader: str | Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in COMPONENT_KINDS:
            raise ValueError(f"unknown component kind {self.kind!r}; expected one of {', '.join(COMPONENT_KINDS)}")
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(f"component name {self.name!r} must be non-empty and contain no spaces")

    def label(self) -> str:
        """``kind 'name'``, as used in messages."""
        return f"{self.kind.replace('_', ' ')} '{self.name}'"

    def build(self, **options: Any) -> Any:
        """Import (if needed) and construct the component."""
        target = load_object(self.loader) if isinstance(self.loader, str) else self.loader
        return target(**options)


@dataclass(frozen=True)
class Connection:
    """``source``'s output feeds the ``port`` input of ``target`` (both are roles in a composition)."""

    source: str
    target: str
    port: str


@dataclass(frozen=True)
class BackendFactory:
    """A registered backend: the components it composes, how they connect, how to build it."""

    name: str
    components: Mapping[str, tuple[str, str]]
    connections: Sequence[Connection]
    loader: str | Callable[..., Any]
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, **options: Any) -> Any:
        """Import (if needed) and construct the backend."""
        target = load_object(self.loader) if isinstance(self.loader, str) else self.loader
        return target(**{**self.options, **options})


def composition_problems(
    components: Mapping[str, ComponentFactory], connections: Sequence[Connection]
) -> list[str]:
    """Every connection of a composition that does not fit, as a sentence naming both components."""
    problems: list[str] = []
    for link in connections:
        source, target = components.get(link.source), components.get(link.target)
        if source is None or target is None:
            missing = link.source if source is None else link.target
            problems.append(f"the composition has no component in role '{missing}'")
            continue
        accepted = target.accepts.get(link.port)
        if accepted is None:
            ports = ", ".join(sorted(target.accepts)) or "none"
            problems.append(f"{target.label()} has no input '{link.port}' (inputs: {ports})")
            continue
        reason = stream_mismatch(source.produces, accepted)
        if reason:
            problems.append(
                f"{target.label()} cannot take the output of {source.label()}: "
                f"it accepts {accepted.describe()} on '{link.port}', "
                f"but {source.label()} produces {source.produces.describe()} ({reason})"
            )
    return problems


def chain(*roles: str, port: str = "input") -> list[Connection]:
    """Connections for a straight pipeline: each role feeds the ``port`` input of the next."""
    return [Connection(a, b, port) for a, b in zip(roles, roles[1:])]
