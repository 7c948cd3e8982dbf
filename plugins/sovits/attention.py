"""The attention blocks of SoVITS's s2 text encoder (``enc_p``): VITS-style relative-position
self-attention encoders and the multi-head cross-attention MRTE uses.

Parameter names follow GPT-SoVITS v2 (``conv_q``, ``emb_rel_k``, ``norm_layers_1.N.gamma`` ...),
so published weights load without renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of ``[batch, channels, time]`` (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise every frame's channel vector."""
        x = F.layer_norm(x.transpose(1, -1), (x.size(1),), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1 convolutions; relative-position keys/values when ``window_size`` is set."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window_size: int | None = None) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"{channels} channels do not split into {n_heads} heads")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            std = self.k_channels ** -0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend from ``x`` ``[b, c, t_q]`` to ``context`` ``[b, c, t_k]``; ``mask`` is ``[b, 1, t_q, t_k]``."""
        b, channels, t_q = x.shape
        t_k = context.size(2)
        q = self.conv_q(x).view(b, self.n_heads, self.k_channels, t_q).transpose(2, 3)
        k = self.conv_k(context).view(b, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        v = self.conv_v(context).view(b, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = q @ k.transpose(-2, -1)
        if self.window_size is not None:
            rel_k = self._relative_embeddings(self.emb_rel_k, t_k)
            scores = scores + self._relative_to_absolute(q @ rel_k.unsqueeze(0).transpose(-2, -1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        weights = self.drop(F.softmax(scores, dim=-1))
        out = weights @ v
        if self.window_size is not None:
            rel_v = self._relative_embeddings(self.emb_rel_v, t_k)
            out = out + self._absolute_to_relative(weights) @ rel_v.unsqueeze(0)
        out = out.transpose(2, 3).contiguous().view(b, channels, t_q)
        return self.conv_o(out)

    def _relative_embeddings(self, table: torch.Tensor, length: int) -> torch.Tensor:
        """The ``2 * length - 1`` relative embeddings for offsets ``-(length-1) .. length-1`` (zeros past the window)."""
        window = self.window_size or 0
        pad = max(length - (window + 1), 0)
        start = max((window + 1) - length, 0)
        padded = F.pad(table, (0, 0, pad, pad)) if pad else table
        return padded[:, start:start + 2 * length - 1]

    @staticmethod
    def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
        """``[b, h, l, 2l-1]`` relative logits -> ``[b, h, l, l]`` absolute ones."""
        b, h, length, _ = x.shape
        x = F.pad(x, (0, 1)).view(b, h, length * 2 * length)
        x = F.pad(x, (0, length - 1))
        return x.view(b, h, length + 1, 2 * length - 1)[:, :, :length, length - 1:]

    @staticmethod
    def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
        """``[b, h, l, l]`` absolute weights -> ``[b, h, l, 2l-1]`` relative ones."""
        b, h, length, _ = x.shape
        x = F.pad(x, (0, length - 1)).view(b, h, length * length + length * (length - 1))
        x = F.pad(x, (length, 0))
        return x.view(b, h, length, 2 * length)[:, :, :, 1:]


class FeedForward(nn.Module):
    """Two 'same'-padded convolutions with a ReLU between them (``conv_1``, ``conv_2``)."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[b, c, t]`` -> ``[b, c, t]``, zero where ``mask`` is."""
        x = self.drop(torch.relu(self.conv_1(self._pad(x * mask))))
        return self.conv_2(self._pad(x * mask)) * mask


class RelativeEncoder(nn.Module):
    """A post-norm stack of relative-position self-attention and feed-forward layers (window 4)."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 p_dropout: float, window_size: int = 4) -> None:
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(channels, channels, n_heads, p_dropout, window_size) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FeedForward(channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``[b, c, t]`` with ``mask`` ``[b, 1, t]`` -> ``[b, c, t]``."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, mask)))
        return x * mask
