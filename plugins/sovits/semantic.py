"""Semantic tokens: HuBERT features (transformers ``HubertModel``), s2's ``ssl_proj`` (50 Hz -> 25 Hz)
and its one-codebook quantizer (vector-quantize-pytorch's ``ResidualVQ`` with one quantizer).

The codebook defines the tokens every voice's s1 is trained on, so this part is frozen: it runs in
eval mode (nearest-code lookup, no EMA update) in training as in synthesis.
"""

from __future__ import annotations

import torch
from torch import nn


class SemanticQuantizer(nn.Module):
    """``ssl_proj`` (kernel 2, stride 2) then the codebook: HuBERT features -> 25 Hz codes and their vectors."""

    def __init__(self, ssl_dim: int, codebook_size: int) -> None:
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.ssl_proj = nn.Conv1d(ssl_dim, ssl_dim, 2, stride=2)
        self.quantizer = ResidualVQ(dim=ssl_dim, num_quantizers=1, codebook_size=codebook_size, decay=0.99,
                                    kmeans_init=True, threshold_ema_dead_code=2)
        self.eval()

    def train(self, mode: bool = True) -> "SemanticQuantizer":
        """Always eval: the codebook and projection never change."""
        return super().train(False)

    @torch.no_grad()
    def codes(self, features: torch.Tensor) -> torch.Tensor:
        """``[b, ssl_dim, t50]`` HuBERT features -> ``[b, t50 // 2]`` codes."""
        projected = self.ssl_proj(features).transpose(1, 2)
        _, indices, _ = self.quantizer(projected)
        return indices[..., 0]

    @torch.no_grad()
    def vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """``[b, t25]`` codes -> ``[b, ssl_dim, t25]`` codebook vectors."""
        return self.quantizer.get_output_from_indices(codes.unsqueeze(-1)).transpose(1, 2)


def hubert_features(model: nn.Module, extractor: object, audio_16k: torch.Tensor) -> torch.Tensor:
    """``[samples]`` 16 kHz audio -> ``[1, hidden, frames]`` HuBERT ``last_hidden_state`` (50 Hz)."""
    values = extractor(audio_16k.cpu().numpy(), sampling_rate=16000, return_tensors="pt").input_values
    device = next(model.parameters()).device
    with torch.no_grad():
        hidden = model(values.to(device)).last_hidden_state
    return hidden.transpose(1, 2)
