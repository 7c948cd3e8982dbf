"""Faster training of coqui's XTTS GPT with the same maths: dropout masks, attention and GELU.

coqui's GPT is a transformers ``GPT2Model`` with the GPT-2 defaults: dropout 0.1 on the
embeddings, on every residual branch and on the attention probabilities, and the ``gelu_new``
activation. On a CPU, torch draws dropout masks one element at a time and SDPA with dropout
falls back to its slowest path, so dropout alone costs a training step more than its
attention. :func:`speed_up_for_training` keeps every rate and formula and changes how they are
computed:

- every ``nn.Dropout`` becomes :class:`tts_host.training.dropout.Dropout` (same law, masks drawn
  on every core, still seeded by ``torch.manual_seed``; on a GPU it is torch's own dropout);
- attention with dropout on a CPU is computed explicitly (scores, softmax, dropout, values)
  with that mask; without dropout (evaluation, inference), and on a GPU, whose fused SDPA
  kernels draw their own masks, it is transformers' SDPA, as before;
- ``gelu_new`` (eight element-wise passes in Python) becomes torch's fused tanh GELU, the same
  function.
"""

from __future__ import annotations

from typing import Any

import torch

from tts_host.training.dropout import dropout as apply_dropout
from tts_host.training.dropout import replace_dropouts

ATTENTION = "tts-host-sdpa-dropout"


def speed_up_for_training(gpt: Any) -> None:
    """Apply the three changes above to a coqui ``GPT`` in place (idempotent)."""
    from transformers.activations import ACT2FN

    transformer = gpt.gpt
    _register_attention()
    replace_dropouts(gpt)
    if transformer.config.activation_function == "gelu_new":
        for block in transformer.h:
            block.mlp.act = ACT2FN["gelu_pytorch_tanh"]
    transformer.config._attn_implementation = ATTENTION


def attention_with_dropout(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, dropout: float = 0.0,
                           scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any):
    """transformers attention interface: SDPA without dropout or off the CPU; else explicit, with the fast mask."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not dropout or not module.training or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout if module.training else 0.0, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(scale)
    if attention_mask is None:
        length, total = query.shape[-2], key.shape[-2]
        attention_mask = torch.ones(length, total, dtype=torch.bool, device=query.device).tril(total - length)
    if attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask
    probabilities = torch.softmax(scores, dim=-1).to(value.dtype)
    probabilities = apply_dropout(probabilities, dropout, True)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if ATTENTION not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(ATTENTION, attention_with_dropout)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
