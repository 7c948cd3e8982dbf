"""Helpers for a voice's conditioning (named numpy arrays the library stores as one safetensors blob):
text kept as UTF-8 byte arrays, and a reference clip's transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tts_host.errors import TTSHostError


def text_array(text: str) -> np.ndarray:
    """UTF-8 bytes of ``text`` as a uint8 array (conditioning is stored as arrays)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def array_text(array: np.ndarray) -> str:
    """Inverse of :func:`text_array`."""
    return bytes(np.asarray(array, dtype=np.uint8)).decode("utf-8")


def reference_transcript(references: Sequence[Path], ref_text: str | None, backend: str) -> str:
    """``ref_text``, else the transcripts beside the clips (``clip.txt`` next to ``clip.wav``), joined."""
    if ref_text and ref_text.strip():
        return " ".join(ref_text.split())
    texts = []
    for ref in references:
        sidecar = Path(ref).with_suffix(".txt")
        if not sidecar.is_file():
            raise TTSHostError(f"{backend} cloning needs the transcript of {ref}: pass --ref-text \"...\" "
                               f"or put {sidecar.name} beside it")
        texts.append(" ".join(sidecar.read_text(encoding="utf-8").split()))
    return " ".join(texts)
