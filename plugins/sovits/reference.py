"""A SoVITS voice's reference: 3-10 s of its speech and the transcript, stored as its conditioning.

Stored arrays: ``ref_audio`` (32 kHz float32: the voice vector is taken from its spectrogram at
synthesis, by whichever reference encoder speaks), ``ref_codes`` (its semantic codes, made with
0.3 s of silence appended as upstream does: they depend only on the base's protected semantic part),
``ref_text`` and ``ref_language``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tts_host.conditioning import array_text, text_array
from tts_host.errors import TTSHostError
from tts_host.plugins.sovits import HUBERT_RATE, SAMPLE_RATE
from tts_host.plugins.sovits.components import SemanticCodec
from tts_host.training.clips import ClipRef

MIN_SECONDS, MAX_SECONDS = 3.0, 10.0
SILENCE_SECONDS = 0.3


def check_length(seconds: float, what: str) -> None:
    """Refuse a reference outside 3-10 s with one line giving its length."""
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise TTSHostError(f"{what} is {seconds:.2f} s long; a SoVITS reference must be {MIN_SECONDS:.0f}-"
                           f"{MAX_SECONDS:.0f} s")


def conditioning(codec: SemanticCodec, audio_32k: np.ndarray, text: str, language: str) -> dict[str, np.ndarray]:
    """The conditioning arrays of a reference (see the module docstring)."""
    import librosa

    audio_16k = librosa.resample(audio_32k, orig_sr=SAMPLE_RATE, target_sr=HUBERT_RATE, res_type="soxr_hq")
    padded = np.concatenate([audio_16k, np.zeros(int(SILENCE_SECONDS * HUBERT_RATE), dtype=np.float32)])
    return {"ref_audio": audio_32k.astype(np.float32), "ref_codes": codec.encode(padded).astype(np.int64),
            "ref_text": text_array(text), "ref_language": text_array(language)}


def from_files(codec: SemanticCodec, paths: Sequence[Path], text: str, language: str) -> dict[str, np.ndarray]:
    """Zero-shot cloning: the clips at ``paths`` joined (3-10 s in all) with their transcript ``text``."""
    from tts_host.data import read_audio

    audio = np.concatenate([read_audio(Path(p), SAMPLE_RATE) for p in paths]).astype(np.float32)
    names = ", ".join(str(p) for p in paths)
    check_length(len(audio) / SAMPLE_RATE, f"the reference {names}")
    if not np.isfinite(audio).all() or float(np.abs(audio).max(initial=0.0)) == 0.0:
        raise TTSHostError(f"the reference {names} is silent or holds NaN/infinite samples")
    return conditioning(codec, audio, text, language)


def from_training_clips(codec: SemanticCodec, clips: Sequence[ClipRef]) -> tuple[dict[str, np.ndarray], list[Path]]:
    """A fine-tuned voice's reference: its training clips, longest first, joined up to 3-10 s."""
    import soundfile

    chosen: list[ClipRef] = []
    seconds = 0.0
    lengths = {clip.id: soundfile.info(clip.audio_path).duration for clip in clips}  # headers only
    for clip in sorted(clips, key=lambda c: (-lengths[c.id], c.id)):
        if seconds + lengths[clip.id] > MAX_SECONDS:
            continue
        chosen.append(clip)
        seconds += lengths[clip.id]
        if seconds >= MIN_SECONDS:
            break
    if seconds < MIN_SECONDS:
        raise TTSHostError(f"the training clips give {seconds:.2f} s of reference audio (clips of at most "
                           f"{MAX_SECONDS:.0f} s joined); a SoVITS voice needs {MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s")
    audio = np.concatenate([clip.read(SAMPLE_RATE) for clip in chosen]).astype(np.float32)
    text = " ".join(clip.text for clip in chosen)
    return conditioning(codec, audio, text, chosen[0].language), [Path(clip.audio_path) for clip in chosen]


def reference_of(stored: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, str, str]:
    """``(ref_audio, ref_codes, ref_text, ref_language)`` of stored conditioning."""
    missing = [k for k in ("ref_audio", "ref_codes", "ref_text", "ref_language") if k not in stored]
    if missing:
        raise TTSHostError(f"the voice's conditioning has no {missing[0]}: re-clone or re-fine-tune it")
    return (np.asarray(stored["ref_audio"], dtype=np.float32), np.asarray(stored["ref_codes"], dtype=np.int64),
            array_text(stored["ref_text"]), array_text(stored["ref_language"]))
