"""Zero-shot cloning: a reference clip's speech codes and transcript, stored as the voice's conditioning."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tts_host.conditioning import reference_transcript, text_array
from tts_host.errors import TTSHostError
from tts_host.interfaces import Codec
from tts_host.plugins.llasa import SAMPLE_RATE

MAX_REFERENCE_SECONDS = 15.0


def reference_conditioning(codec: Codec, references: Sequence[Path], ref_text: str | None = None
                           ) -> dict[str, np.ndarray]:
    """``ref_codes`` (the clips' codes from the ``codec`` component, joined) and ``ref_text`` (their transcript).

    The transcript is resolved before the codec encodes anything.
    """
    from tts_host.data import read_audio

    transcript = reference_transcript(references, ref_text, "llasa")
    audio = np.concatenate([read_audio(Path(ref), SAMPLE_RATE) for ref in references])
    seconds = len(audio) / SAMPLE_RATE
    if seconds > MAX_REFERENCE_SECONDS:
        raise TTSHostError(f"the reference audio is {seconds:.1f} s long; use at most {MAX_REFERENCE_SECONDS:.0f} s "
                           f"(it becomes part of every prompt)")
    return {"ref_codes": codec.encode(audio).astype(np.int64), "ref_text": text_array(transcript)}
