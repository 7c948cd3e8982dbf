"""Zero-shot cloning: a reference clip's speech codes and transcript, stored as the voice's conditioning."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.interfaces import Codec
from tts_host.plugins.llasa import SAMPLE_RATE

MAX_REFERENCE_SECONDS = 15.0


def text_array(text: str) -> np.ndarray:
    """UTF-8 bytes of ``text`` as a uint8 array (conditioning is stored as arrays)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def array_text(array: np.ndarray) -> str:
    """Inverse of :func:`text_array`."""
    return bytes(np.asarray(array, dtype=np.uint8)).decode("utf-8")


def reference_transcript(references: Sequence[Path], ref_text: str | None) -> str:
    """``ref_text``, else the transcripts beside the clips (``clip.txt`` next to ``clip.wav``), joined."""
    if ref_text and ref_text.strip():
        return " ".join(ref_text.split())
    texts = []
    for ref in references:
        sidecar = Path(ref).with_suffix(".txt")
        if not sidecar.is_file():
            raise TTSHostError(f"llasa cloning needs the transcript of {ref}: pass --ref-text \"...\" "
                               f"or put {sidecar.name} beside it")
        texts.append(" ".join(sidecar.read_text(encoding="utf-8").split()))
    return " ".join(texts)


def reference_conditioning(codec: Codec, references: Sequence[Path], ref_text: str | None = None
                           ) -> dict[str, np.ndarray]:
    """``ref_codes`` (the clips' codes from the ``codec`` component, joined) and ``ref_text`` (their transcript).

    The transcript is resolved before the codec encodes anything.
    """
    from tts_host.data import read_audio

    transcript = reference_transcript(references, ref_text)
    audio = np.concatenate([read_audio(Path(ref), SAMPLE_RATE) for ref in references])
    seconds = len(audio) / SAMPLE_RATE
    if seconds > MAX_REFERENCE_SECONDS:
        raise TTSHostError(f"the reference audio is {seconds:.1f} s long; use at most {MAX_REFERENCE_SECONDS:.0f} s "
                           f"(it becomes part of every prompt)")
    return {"ref_codes": codec.encode(audio).astype(np.int64), "ref_text": text_array(transcript)}
