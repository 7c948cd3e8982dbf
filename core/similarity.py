"""Speaker similarity with a real, pretrained speaker encoder: Resemblyzer's d-vector LSTM (its weights ship
inside the PyPI wheel). Audio is resampled to 16 kHz and trimmed of silences (webrtcvad) as Resemblyzer
expects (audio the detector finds no speech in, such as an untrained model's, is compared whole); a
d-vector is unit length, so similarity is a dot product (1: the same direction)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tts_host.errors import TTSHostError


class SpeakerSimilarity:
    """Embeds speech and compares it with a speaker's recordings."""

    def __init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise TTSHostError("tts-host eval needs Resemblyzer: pip install 'tts-host[eval]'") from exc
        # torch >= 2.6 (the lock has 2.11) loads Resemblyzer's weights with weights_only=True by default.
        self.encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The unit d-vector (256 values) of mono ``audio``."""
        import librosa
        from resemblyzer import audio as resemblyzer_audio

        samples = np.asarray(audio, dtype=np.float32)
        wav = resemblyzer_audio.preprocess_wav(samples, source_sr=sample_rate)
        if wav.size < 1600:  # the voice-activity detector found under 0.1 s of speech: compare the whole audio
            wav = librosa.resample(samples, orig_sr=sample_rate, target_sr=resemblyzer_audio.sampling_rate)
            wav = resemblyzer_audio.normalize_volume(wav, resemblyzer_audio.audio_norm_target_dBFS, increase_only=True)
        if wav.size < 1600:
            raise TTSHostError(f"{samples.size / sample_rate:.2f} s of audio is too short to compare (0.1 s at least)")
        return self.encoder.embed_utterance(wav)

    def embed_files(self, paths: Sequence[Path]) -> np.ndarray:
        """The unit mean d-vector of several recordings."""
        from tts_host.data import read_audio

        vectors = [self.embed(read_audio(Path(p), 16000), 16000) for p in paths]
        if not vectors:
            raise TTSHostError("no recordings to compare with")
        mean = np.mean(vectors, axis=0)
        return mean / np.linalg.norm(mean)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity of two d-vectors."""
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
