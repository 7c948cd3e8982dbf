"""Measurements on audio: the 10 ms energy envelope, speech ratio, SNR, spectral entropy, clipping."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FRAME_SECONDS = 0.01
CLIP_LEVEL = 0.999  # a sample at or above this magnitude counts as clipped
FLOOR_POWER = 1e-12  # -120 dB: digital silence
MAX_SNR_DB = 100.0


@dataclass
class Envelope:
    """Per-frame mean power and clipped-sample counts of a whole file, built block by block."""

    hop: int  # samples per frame at the file's rate
    powers: list[np.ndarray] = field(default_factory=list)
    clipped: list[np.ndarray] = field(default_factory=list)
    non_finite: int = 0
    _carry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def add(self, block: np.ndarray) -> None:
        """Feed the next mono block; frames spanning block borders are carried over."""
        finite = np.isfinite(block)
        if not finite.all():
            self.non_finite += int((~finite).sum())
            block = np.where(finite, block, 0.0).astype(np.float32)
        joined = np.concatenate([self._carry, block]) if len(self._carry) else block
        whole = len(joined) // self.hop * self.hop
        frames = joined[:whole].reshape(-1, self.hop)
        self.powers.append(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / self.hop)
        self.clipped.append((np.abs(frames) >= CLIP_LEVEL).sum(axis=1).astype(np.int32))
        self._carry = joined[whole:].copy()

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """``(frame power, clipped samples per frame)``; a final partial frame counts as a frame."""
        if len(self._carry):
            self.powers.append(np.array([np.mean(self._carry.astype(np.float64) ** 2)]))
            self.clipped.append(np.array([(np.abs(self._carry) >= CLIP_LEVEL).sum()], dtype=np.int32))
            self._carry = np.zeros(0, dtype=np.float32)
        if not self.powers:
            return np.zeros(0), np.zeros(0, dtype=np.int32)
        return np.concatenate(self.powers), np.concatenate(self.clipped)


def to_db(power: np.ndarray) -> np.ndarray:
    """Power to decibels, floored at -120 dB."""
    return 10.0 * np.log10(np.maximum(power, FLOOR_POWER))


def speech_ratio(relative_db: np.ndarray, silence_db: float) -> float:
    """Fraction of frames above the silence threshold (dB relative to the file's loudest frame)."""
    return float((relative_db > silence_db).mean()) if len(relative_db) else 0.0


def snr_db(power: np.ndarray, relative_db: np.ndarray, silence_db: float) -> float:
    """Estimated SNR: mean power of speech frames over the mean of the quietest 10% of frames."""
    if not len(power):
        return 0.0
    speech = power[relative_db > silence_db]
    if not len(speech):
        return 0.0
    quietest = np.sort(power)[: max(1, len(power) // 10)]
    noise = max(float(quietest.mean()), FLOOR_POWER)
    signal = max(float(speech.mean()) - noise, FLOOR_POWER)
    return float(min(MAX_SNR_DB, 10.0 * np.log10(signal / noise)))


def spectral_entropy(audio: np.ndarray, sample_rate: int, silence_db: float) -> float:
    """Mean normalised power-spectrum entropy of the non-silent frames, in [0, 1].

    Each 40 ms frame's power spectrum is read as a probability distribution; its entropy
    divided by log(bins) is near 1 for white noise and well below 1 for voiced speech.
    """
    n_fft = 1 << int(np.ceil(np.log2(0.04 * sample_rate)))
    hop = n_fft // 2
    if len(audio) < n_fft:
        return 1.0
    count = 1 + (len(audio) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(audio, shape=(count, n_fft),
                                             strides=(audio.strides[0] * hop, audio.strides[0]))
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    energy = spectrum.sum(axis=1)
    loud = to_db(energy) > to_db(energy.max()) + silence_db
    if not loud.any():
        return 1.0
    probabilities = spectrum[loud] / energy[loud, None]
    entropy = -(probabilities * np.log(np.maximum(probabilities, 1e-20))).sum(axis=1) / np.log(spectrum.shape[1])
    return float(entropy.mean())
