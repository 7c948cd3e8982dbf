"""SoVITS's spectrograms: the linear magnitude spectrogram s2 reads (posterior and reference
encoders) and the log-mel spectrogram of its reconstruction loss, framed as GPT-SoVITS frames them
(reflect padding of ``(n_fft - hop) / 2`` each side, no centring: one frame per hop)."""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=None))


def linear_spectrogram(audio: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """``[b, samples]`` audio -> ``[b, n_fft // 2 + 1, samples // hop]`` magnitudes."""
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(padded, n_fft, hop_length=hop, win_length=win, window=window, center=False,
                      normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)


def mel_from_linear(spec: torch.Tensor, sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Log-mel (natural log, floor 1e-5) of a linear spectrogram ``[b, bins, t]``."""
    basis = _mel_basis(sample_rate, n_fft, n_mels).to(device=spec.device, dtype=spec.dtype)
    return torch.log(torch.clamp(basis @ spec, min=1e-5))


def log_mel(audio: torch.Tensor, sample_rate: int, n_fft: int, hop: int, win: int, n_mels: int) -> torch.Tensor:
    """``[b, samples]`` audio -> ``[b, n_mels, samples // hop]`` log-mel."""
    return mel_from_linear(linear_spectrogram(audio, n_fft, hop, win), sample_rate, n_fft, n_mels)
