"""Builders of dataset sources for the data tests: real espeak speech, odd and broken audio files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050


def copy_clips(clips: list[tuple[Path, str]], folder: Path, *, transcripts: bool = True) -> list[Path]:
    """Copy speaker_clips wavs (and their .txt transcripts) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for wav, _text in clips:
        shutil.copy(wav, folder / wav.name)
        if transcripts:
            shutil.copy(wav.with_suffix(".txt"), folder / wav.with_suffix(".txt").name)
        copied.append(folder / wav.name)
    return copied


def read(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio and rate of a wav."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def frame_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """10 ms frame power in dB (the measure the slicer uses)."""
    hop = round(rate * 0.01)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop).astype(np.float64)
    return 10 * np.log10(np.maximum((frames ** 2).mean(axis=1), 1e-12))


def noisy(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``audio`` plus white noise at ``snr_db`` relative to its mean power."""
    power = float(np.mean(audio ** 2))
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def noise_bursts(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Bursts of white noise (0.4 s) separated by short silences (0.1 s): clean "signal" that is pure noise."""
    rng = np.random.default_rng(seed)
    parts = []
    while sum(map(len, parts)) < seconds * RATE:
        parts += [rng.standard_normal(int(0.4 * RATE)).astype(np.float32) * 0.3,
                  np.zeros(int(0.1 * RATE), dtype=np.float32)]
    return np.concatenate(parts)


def write_hour(path: Path, unit: np.ndarray, rate: int, seconds: float = 3600.0) -> Path:
    """Repeat ``unit`` (speech with pauses) into a ``seconds`` long 16-bit wav, written in blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as handle:
        written = 0
        while written < seconds * rate:
            block = unit[: int(seconds * rate) - written]
            handle.write(block)
            written += len(block)
    return path
