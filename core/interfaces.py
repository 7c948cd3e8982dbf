"""Runtime interfaces of the five component kinds.

A factory's loader, called as ``loader(model_folder=FOLDER, device=DEVICE)``, returns an object
that satisfies its kind's protocol; :class:`tts_host.composition.Components` checks it when the
component is built. Audio is mono float32 numpy at the component's own ``sample_rate``; tokens
are integer numpy arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Codec(Protocol):
    """Audio <-> discrete tokens."""

    sample_rate: int
    hop_length: int
    codebook_size: int

    def encode(self, waveform: np.ndarray) -> np.ndarray:
        """Encode mono audio at ``sample_rate`` to integer codes (frames last)."""
        ...

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Decode codes back to mono audio at ``sample_rate``."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """Text -> token ids."""

    vocab_size: int

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Token ids for ``text`` (in ``language`` where the encoder is multilingual)."""
        ...


@runtime_checkable
class AcousticModel(Protocol):
    """Text tokens + speaker conditioning -> acoustic tokens, mels or latents (the trainable part)."""

    def generate(self, text_tokens: Any, conditioning: Any, **sampling: Any) -> Any:
        """Produce acoustic output for one utterance."""
        ...


@runtime_checkable
class AdapterSwitching(Protocol):
    """An acoustic model that speaks through one of several LoRA adapters on its one loaded base.

    Servers build it once from a model folder without adapter files and switch per request;
    a backend whose acoustic model does not switch gets one loaded model per LoRA voice.
    """

    def use_adapter(self, name: str | None, folder: Path | None = None) -> None:
        """Speak through adapter ``name`` (loaded from the model folder ``folder`` the first time); ``None``: the
        base alone."""
        ...

    def drop_adapter(self, name: str) -> None:
        """Unload adapter ``name`` (its memory goes back)."""
        ...


@runtime_checkable
class Vocoder(Protocol):
    """Acoustic output -> waveform."""

    sample_rate: int

    def vocode(self, features: Any) -> np.ndarray:
        """Turn acoustic features into mono float32 audio at ``sample_rate``."""
        ...


@runtime_checkable
class SpeakerEncoder(Protocol):
    """Audio -> fixed-size speaker embedding (d-vector)."""

    sample_rate: int
    embedding_dim: int

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """A ``(embedding_dim,)`` embedding of mono audio at ``sample_rate``."""
        ...
