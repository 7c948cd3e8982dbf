"""s2's own modules: the prior encoder ``enc_p`` (semantic latents + phonemes, fused by MRTE) and the
reference encoder ``ref_enc`` (a mel-style encoder over a linear spectrogram -> a 512-d voice vector).

These have no equivalent in a maintained library; their parameter names follow GPT-SoVITS v2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tts_host.plugins.sovits.attention import MultiHeadAttention, RelativeEncoder


def length_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """``[b]`` lengths -> ``[b, 1, max_length]`` float mask."""
    steps = torch.arange(max_length, device=lengths.device)
    return (steps.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).float()


class MRTE(nn.Module):
    """Multi-reference timbre encoder: semantic frames attend to phonemes; the voice vector is added."""

    def __init__(self, content_channels: int = 192, hidden: int = 512, n_heads: int = 4) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden, hidden, n_heads)
        self.c_pre = nn.Conv1d(content_channels, hidden, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, content_channels, 1)

    def forward(self, ssl: torch.Tensor, ssl_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                voice: torch.Tensor) -> torch.Tensor:
        """``ssl`` ``[b, c, t]``, ``text`` ``[b, c, n]``, ``voice`` ``[b, 512, 1]`` -> ``[b, c, t]``."""
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        ssl = self.c_pre(ssl * ssl_mask)
        text = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl * ssl_mask, text * text_mask, attn_mask) + ssl + voice
        return self.c_post(x * ssl_mask)


class PriorEncoder(nn.Module):
    """``enc_p``: quantized semantic latents and phoneme ids -> the prior's mean and log-std per frame."""

    def __init__(self, out_channels: int, hidden: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, p_dropout: float, n_symbols: int, ssl_dim: int = 768, gin_channels: int = 512) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ssl_proj = nn.Conv1d(ssl_dim, hidden, 1)
        self.encoder_ssl = RelativeEncoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size, p_dropout)
        self.encoder_text = RelativeEncoder(hidden, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.text_embedding = nn.Embedding(n_symbols, hidden)
        self.mrte = MRTE(hidden, gin_channels)
        self.encoder2 = RelativeEncoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def text_branch(self) -> list[nn.Parameter]:
        """The parameters upstream trains at a lower learning rate (phoneme embedding, text encoder, MRTE)."""
        modules = (self.text_embedding, self.encoder_text, self.mrte)
        return [p for module in modules for p in module.parameters()]

    def forward(self, latents: torch.Tensor, latent_lengths: torch.Tensor, phonemes: torch.Tensor,
                phoneme_lengths: torch.Tensor, voice: torch.Tensor, speed: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean ``m``, log-std ``logs`` ``[b, out, t]`` and the frame mask ``[b, 1, t]`` (``t`` stretched by 1/speed)."""
        mask = length_mask(latent_lengths, latents.size(2)).to(latents.dtype)
        y = self.ssl_proj(latents * mask) * mask
        y = self.encoder_ssl(y * mask, mask)
        text_mask = length_mask(phoneme_lengths, phonemes.size(1)).to(y.dtype)
        text = self.text_embedding(phonemes).transpose(1, 2)
        text = self.encoder_text(text * text_mask, text_mask)
        y = self.mrte(y, mask, text, text_mask, voice)
        y = self.encoder2(y * mask, mask)
        if speed != 1:
            y = F.interpolate(y, size=int(y.shape[-1] / speed) + 1, mode="linear")
            mask = F.interpolate(mask, size=y.shape[-1], mode="nearest")
        m, logs = torch.split(self.proj(y) * mask, self.out_channels, dim=1)
        return m, logs, mask


class ReferenceEncoder(nn.Module):
    """``ref_enc``: a linear spectrogram's first ``in_bins`` bins -> one ``[b, out, 1]`` voice vector."""

    def __init__(self, in_bins: int = 704, hidden: int = 128, out_dim: int = 512, kernel_size: int = 5,
                 n_heads: int = 2, p_dropout: float = 0.1) -> None:
        super().__init__()
        self.in_bins = in_bins
        self.spectral = nn.Sequential(
            _Linear(in_bins, hidden), nn.Mish(), nn.Dropout(p_dropout),
            _Linear(hidden, hidden), nn.Mish(), nn.Dropout(p_dropout))
        self.temporal = nn.Sequential(_GluConv(hidden, kernel_size, p_dropout), _GluConv(hidden, kernel_size, p_dropout))
        self.slf_attn = _FrameAttention(n_heads, hidden, p_dropout)
        self.fc = _Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``spec`` ``[b, bins, t]`` (only the first ``in_bins`` are read), ``mask`` ``[b, 1, t]``."""
        x = spec[:, :self.in_bins]
        if mask is not None:
            x = x * mask
        x = self.spectral(x.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        pad = None if mask is None else (mask.squeeze(1) == 0)
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))
        if pad is None:
            return x.mean(dim=1).unsqueeze(-1)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        frames = (~pad).sum(dim=1, keepdim=True).clamp(min=1)
        return (x.sum(dim=1) / frames).unsqueeze(-1)


class _Linear(nn.Module):
    """A linear layer held as ``fc`` (upstream's ``LinearNorm`` naming)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _GluConv(nn.Module):
    """A residual gated (GLU) convolution, held as ``conv1.conv``."""

    def __init__(self, channels: int, kernel_size: int, p_dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Module()
        self.conv1.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(p_dropout)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = torch.split(self.conv1.conv(x), self.channels, dim=1)
        return x + self.dropout(a * torch.sigmoid(gate))


class _FrameAttention(nn.Module):
    """Residual multi-head self-attention over frames ``[b, t, c]`` (``w_qs``, ``w_ks``, ``w_vs``, ``fc``)."""

    def __init__(self, n_heads: int, channels: int, p_dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.w_qs = nn.Linear(channels, channels)
        self.w_ks = nn.Linear(channels, channels)
        self.w_vs = nn.Linear(channels, channels)
        self.fc = nn.Linear(channels, channels)
        self.temperature = channels ** 0.5
        self.dropout = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        b, t, c = x.shape
        heads, d = self.n_heads, c // self.n_heads

        def split(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, t, heads, d).transpose(1, 2)

        scores = split(self.w_qs) @ split(self.w_ks).transpose(-2, -1) / self.temperature
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        out = (weights @ split(self.w_vs)).transpose(1, 2).reshape(b, t, c)
        return self.dropout(self.fc(out)) + x
