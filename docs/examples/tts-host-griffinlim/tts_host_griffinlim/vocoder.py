"""The Griffin-Lim vocoder: invert a mel spectrogram to audio with librosa."""

from __future__ import annotations

import numpy as np

from tts_host_griffinlim import HOP_LENGTH, N_MELS, SAMPLE_RATE


class GriffinLimVocoder:
    """Mel spectrogram (power, ``n_mels`` x frames) -> mono float32 waveform."""

    def __init__(self, n_iter: int = 32, n_fft: int = 1024, sample_rate: int = SAMPLE_RATE,
                 hop_length: int = HOP_LENGTH, n_mels: int = N_MELS) -> None:
        self.n_iter = n_iter
        self.n_fft = n_fft
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_mels = n_mels

    def mel(self, waveform: np.ndarray) -> np.ndarray:
        """The power mel spectrogram this vocoder inverts (for analysis-synthesis)."""
        import librosa

        return librosa.feature.melspectrogram(
            y=np.asarray(waveform, dtype=np.float32), sr=self.sample_rate, n_fft=self.n_fft,
            hop_length=self.hop_length, n_mels=self.n_mels,
        )

    def vocode(self, features: np.ndarray) -> np.ndarray:
        """Invert the mel filterbank, then recover phase with Griffin-Lim."""
        import librosa

        mel = np.asarray(features, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.n_mels:
            raise ValueError(f"expected a mel spectrogram of shape ({self.n_mels}, frames), got {mel.shape}")
        if not np.isfinite(mel).all():
            raise ValueError("mel spectrogram contains NaN or Inf")
        audio = librosa.feature.inverse.mel_to_audio(
            mel, sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_iter=self.n_iter
        )
        return audio.astype(np.float32)
