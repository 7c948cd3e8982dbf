"""The GPT's speech conditioning (conditioning encoder + perceiver) computed without its padding.

coqui's trainer pads every conditioning slice with silence to 6 s, and its conditioning
encoder and perceiver then spend most of their work on identical silent frames. Neither
module has positions: the encoder's attention blocks see the frames as a set (GroupNorm over
time, attention without position terms) and the perceiver's latents attend to them as a set.
So a run of ``n`` identical frames acts exactly like one frame counted ``n`` times: its share
of the GroupNorm statistics is weighted by ``n`` and its attention logit is raised by
``log n``. This module collapses each row's trailing run of identical frames into one such
weighted frame and computes the same latents (and gradients) as ``GPT.get_style_emb`` with a
fraction of the work; the result differs only by float rounding.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def style_latents(gpt: Any, cond_mels: torch.Tensor) -> torch.Tensor:
    """``GPT.get_style_emb(cond_mels).transpose(1, 2)`` with padding frames collapsed: (batch, latents, dim)."""
    if not supports_collapsing(gpt):
        return gpt.get_style_emb(cond_mels).transpose(1, 2)
    mels = cond_mels.squeeze(1) if cond_mels.ndim == 4 else cond_mels  # (batch, 80, frames)
    frames, counts = collapse_trailing_repeats(mels)
    encoded = _encoder(gpt.conditioning_encoder, frames, counts)  # (batch, dim, kept)
    return _perceiver(gpt.conditioning_perceiver, encoded.transpose(1, 2), counts)


def supports_collapsing(gpt: Any) -> bool:
    """Whether ``gpt`` has the position-free encoder and perceiver this exact shortcut relies on."""
    if not getattr(gpt, "use_perceiver_resampler", False):
        return False
    if any(block.relative_pos_embeddings is not None for block in gpt.conditioning_encoder.attn):
        return False
    return all(not attn.attend.causal and attn.attend.dropout == 0.0 for attn, _ in gpt.conditioning_perceiver.layers)


def collapse_trailing_repeats(mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each row's trailing run of frames equal to its last frame, keeping one frame that counts for the run.

    Returns ``(frames, counts)``: frames (batch, channels, kept) padded to the longest row with
    copies of the row's last frame, and counts (batch, kept) as float: 1 for ordinary frames,
    the run length for the kept run frame, 0 for the padding.
    """
    batch, _, total = mels.shape
    same = (mels == mels[:, :, -1:]).all(dim=1)  # (batch, frames): equal to the row's last frame
    differs = ~same
    # index of the last frame that differs from the final one, -1 if the whole row is one run
    last_different = torch.where(differs.any(dim=1), total - 1 - differs.flip(1).int().argmax(dim=1),
                                 torch.full((batch,), -1, dtype=torch.long, device=mels.device))
    kept = last_different + 2  # ordinary frames plus one frame standing for the run
    width = int(kept.max())
    positions = torch.arange(width, device=mels.device).unsqueeze(0)
    source = torch.minimum(positions, kept.unsqueeze(1) - 1)  # padding repeats the run frame
    frames = torch.gather(mels, 2, source.unsqueeze(1).expand(-1, mels.shape[1], -1))
    counts = (positions < kept.unsqueeze(1) - 1).to(mels.dtype)
    run = (total - 1 - last_different).to(mels.dtype)
    counts.scatter_(1, (kept - 1).unsqueeze(1), run.unsqueeze(1))
    return frames, counts


def _encoder(encoder: Any, frames: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """coqui's ``ConditioningEncoder`` on weighted frames."""
    hidden = encoder.init(frames)
    log_counts = _log_counts(counts)
    for block in encoder.attn:
        hidden = _attention_block(block, hidden, counts, log_counts)
    return hidden


def _attention_block(block: Any, x: torch.Tensor, counts: torch.Tensor, log_counts: torch.Tensor) -> torch.Tensor:
    """coqui's ``AttentionBlock`` (GroupNorm, 1x1 qkv, attention, 1x1 out, residual) on weighted frames."""
    normed = _weighted_group_norm(block.norm, x, counts)
    qkv = block.qkv(normed)
    batch, width, length = qkv.shape
    heads = block.attention.n_heads
    channels = width // (3 * heads)
    q, k, v = qkv.reshape(batch, heads, channels * 3, length).split(channels, dim=2)
    bias = log_counts[:, None, None, :].to(q.dtype)  # (batch, 1, 1, keys)
    out = F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3), v.transpose(2, 3), attn_mask=bias)
    h = block.proj_out(out.transpose(2, 3).reshape(batch, heads * channels, length))
    return (x if block.tortoise_norm else normed) + h


def _weighted_group_norm(norm: Any, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``GroupNorm32`` where frame ``t`` counts ``counts[:, t]`` times in the statistics."""
    batch, channels, length = x.shape
    groups = norm.num_groups
    values = x.float().reshape(batch, groups, channels // groups, length)
    weights = counts.float()[:, None, None, :]
    total = weights.sum(dim=-1, keepdim=True).sum(dim=-2, keepdim=True) * (channels // groups)
    mean = (values * weights).sum(dim=(2, 3), keepdim=True) / total
    var = (((values - mean) ** 2) * weights).sum(dim=(2, 3), keepdim=True) / total
    normed = ((values - mean) / torch.sqrt(var + norm.eps)).reshape(batch, channels, length)
    if norm.affine:
        normed = normed * norm.weight[None, :, None] + norm.bias[None, :, None]
    return normed.to(x.dtype)


def _perceiver(perceiver: Any, context: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """coqui's ``PerceiverResampler`` over weighted context frames: (batch, latents, dim)."""
    batch = context.shape[0]
    context = perceiver.proj_context(context)
    latents = perceiver.latents.unsqueeze(0).expand(batch, -1, -1)
    log_counts = _log_counts(counts)
    for attn, feed_forward in perceiver.layers:
        latents = _cross_attention(attn, latents, context, log_counts) + latents
        latents = feed_forward(latents) + latents
    return perceiver.norm(latents)


def _cross_attention(attn: Any, latents: torch.Tensor, context: torch.Tensor, log_counts: torch.Tensor
                     ) -> torch.Tensor:
    """The perceiver's ``Attention``: latents attend to themselves and the weighted context."""
    if attn.cross_attn_include_queries:
        context = torch.cat((latents, context), dim=1)
        log_counts = torch.cat((log_counts.new_zeros(latents.shape[0], latents.shape[1]), log_counts), dim=1)
    heads = attn.heads
    q = attn.to_q(latents)
    k, v = attn.to_kv(context).chunk(2, dim=-1)
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
    bias = log_counts[:, None, None, :].to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return attn.to_out(out.transpose(1, 2).reshape(latents.shape[0], latents.shape[1], -1))


def _log_counts(counts: torch.Tensor) -> torch.Tensor:
    """log of frame counts, -inf for padding (count 0)."""
    return torch.where(counts > 0, counts.clamp_min(1e-30).log(), torch.full_like(counts, -math.inf))
