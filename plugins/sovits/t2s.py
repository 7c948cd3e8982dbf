"""s1, text-to-semantic: a post-norm transformer that reads phonemes (plus BERT features for Chinese)
and predicts 25 Hz semantic tokens, one at a time, after the reference's tokens.

Parameter names follow GPT-SoVITS v2's ``Text2SemanticDecoder`` (``bert_proj``, ``ar_text_embedding``,
``h.layers.N`` as torch's ``TransformerEncoderLayer``, ``ar_predict_layer``). Training alignment: the
v2 pretrained one: every semantic input position predicts the next token and the last one predicts
EOS (the first token is given, as the reference's tokens are at synthesis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tts_host.plugins.sovits.config import S1Config


class _Embedding(nn.Module):
    """A token embedding held as ``word_embeddings``."""

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class _SinePosition(nn.Module):
    """Sinusoidal positions scaled by a learned ``alpha``, then dropout."""

    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self.dropout = nn.Dropout(dropout)

    def table(self, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, self.dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / self.dim))
        pe = torch.zeros(length, self.dim, device=device)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        return pe.to(dtype)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        pe = self.table(offset + x.size(1), x.device, x.dtype)[offset:]
        return self.dropout(x + self.alpha * pe.unsqueeze(0))


@dataclass
class LayerCache:
    """Keys and values of one layer for every position so far ``[b, heads, t, d]``."""

    k: torch.Tensor
    v: torch.Tensor


class TextToSemantic(nn.Module):
    """GPT-SoVITS v2's s1 model."""

    def __init__(self, config: S1Config) -> None:
        super().__init__()
        m = config.model
        dim, self.heads = int(m["hidden_dim"]), int(m["head"])
        self.eos = config.eos
        self.bert_proj = nn.Linear(int(m.get("bert_dim", 1024)), int(m["embedding_dim"]))
        self.ar_text_embedding = _Embedding(int(m["phoneme_vocab_size"]), int(m["embedding_dim"]))
        self.ar_text_position = _SinePosition(int(m["embedding_dim"]))
        self.ar_audio_embedding = _Embedding(int(m["vocab_size"]), int(m["embedding_dim"]))
        self.ar_audio_position = _SinePosition(int(m["embedding_dim"]))
        layer = nn.TransformerEncoderLayer(dim, self.heads, int(m["linear_units"]), dropout=0.1, batch_first=True)
        self.h = nn.TransformerEncoder(layer, int(m["n_layer"]), enable_nested_tensor=False)
        self.ar_predict_layer = nn.Linear(dim, int(m["vocab_size"]), bias=False)
        self.layer_drop = 0.0

    @property
    def bert_dim(self) -> int:
        return self.bert_proj.in_features

    def _text(self, phonemes: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        return self.ar_text_position(self.ar_text_embedding(phonemes) + self.bert_proj(bert.transpose(1, 2)))

    def _block(self, layer: nn.TransformerEncoderLayer, x: torch.Tensor, mask: torch.Tensor | None,
               cache: LayerCache | None = None) -> tuple[torch.Tensor, LayerCache]:
        b, t, dim = x.shape
        attn = layer.self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, self.heads, dim // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache.k, k], dim=2), torch.cat([cache.v, v], dim=2)
        dropout = attn.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = attn.out_proj(out.transpose(1, 2).reshape(b, t, dim))
        x = layer.norm1(x + layer.dropout1(out))
        x = layer.norm2(x + layer.dropout2(layer.linear2(layer.dropout(F.relu(layer.linear1(x))))))
        return x, LayerCache(k, v)

    def _layers(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, list[LayerCache]]:
        caches = []
        depth = len(self.h.layers)
        for index, layer in enumerate(self.h.layers):
            drop = self.layer_drop * (index + 1) / depth
            if self.training and drop > 0 and torch.rand(()) < drop:
                continue
            x, cache = self._block(layer, x, mask)
            caches.append(cache)
        return x, caches

    def loss(self, phonemes: torch.Tensor, phoneme_lengths: torch.Tensor, bert: torch.Tensor, codes: torch.Tensor,
             code_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy over every predicted token, and the number of tokens predicted.

        ``phonemes`` ``[b, n]``, ``bert`` ``[b, bert_dim, n]``, ``codes`` ``[b, t]`` (right-padded).
        """
        b, n = phonemes.shape
        t = codes.size(1)
        text_valid = torch.arange(n, device=codes.device)[None] < phoneme_lengths[:, None]
        code_valid = torch.arange(t, device=codes.device)[None] < code_lengths[:, None]
        inputs = codes.masked_fill(~code_valid, self.eos)
        targets = F.pad(inputs, (0, 1), value=self.eos)[:, 1:]
        x = torch.cat([self._text(phonemes, bert), self.ar_audio_position(self.ar_audio_embedding(inputs))], dim=1)
        allowed = torch.zeros(n + t, n + t, dtype=torch.bool, device=codes.device)
        allowed[:, :n] = True
        allowed[n:, n:] = torch.ones(t, t, dtype=torch.bool, device=codes.device).tril()
        allowed[:n, n:] = False
        keys = torch.cat([text_valid, code_valid], dim=1)
        mask = (allowed[None] & keys[:, None, :]).unsqueeze(1)
        mask = mask | torch.eye(n + t, dtype=torch.bool, device=codes.device)[None, None]
        hidden, _ = self._layers(x, mask)
        logits = self.ar_predict_layer(hidden[:, n:])
        losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        return (losses * code_valid).sum(), code_valid.sum()

    @torch.no_grad()
    def generate(self, phonemes: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor, *, top_k: int = 15,
                 top_p: float = 1.0, temperature: float = 1.0, repetition_penalty: float = 1.35,
                 max_tokens: int = 1500, min_tokens: int = 11, generator: torch.Generator | None = None) -> torch.Tensor:
        """New semantic tokens ``[1, k]`` after ``prompt`` ``[1, p]`` for ``phonemes`` ``[1, n]`` (EOS excluded).

        EOS is suppressed for the first ``min_tokens`` steps; at most ``max_tokens`` are made.
        """
        x = torch.cat([self._text(phonemes, bert), self.ar_audio_position(self.ar_audio_embedding(prompt))], dim=1)
        n, p = phonemes.size(1), prompt.size(1)
        allowed = torch.ones(n + p, n + p, dtype=torch.bool, device=x.device).tril()
        allowed[:, :n] = True
        allowed[:n, n:] = False
        hidden, caches = x, []
        for layer in self.h.layers:
            hidden, cache = self._block(layer, hidden, allowed[None, None])
            caches.append(cache)
        tokens = prompt
        made: list[int] = []
        for step in range(max_tokens):
            logits = self.ar_predict_layer(hidden[:, -1])
            if step < min_tokens:
                logits[:, self.eos] = float("-inf")
            token = sample_token(logits, tokens, top_k, top_p, temperature, repetition_penalty, generator)
            if token == self.eos or int(logits.argmax(-1)) == self.eos:
                break
            made.append(token)
            tokens = torch.cat([tokens, torch.tensor([[token]], device=x.device)], dim=1)
            position = n + p + len(made) - 1
            hidden = self.ar_audio_embedding(tokens[:, -1:])
            hidden = hidden + self.ar_audio_position.alpha * self.ar_audio_position.table(
                position - n + 1, x.device, x.dtype)[-1]
            for index, layer in enumerate(self.h.layers):
                hidden, caches[index] = self._block(layer, hidden, None, caches[index])
        return torch.tensor([made], dtype=torch.long, device=x.device)


def sample_token(logits: torch.Tensor, previous: torch.Tensor, top_k: int, top_p: float, temperature: float,
                 repetition_penalty: float, generator: torch.Generator | None) -> int:
    """One token from ``[1, vocab]`` logits: repetition penalty, top-p, temperature, top-k (upstream's order)."""
    logits = logits.clone().float()
    if repetition_penalty != 1.0 and previous.numel():
        seen = previous[0].unique()
        score = logits[0, seen]
        logits[0, seen] = torch.where(score < 0, score * repetition_penalty, score / repetition_penalty)
    if top_p < 1.0:
        ordered, order = logits.sort(descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative > top_p
        drop[..., 0] = False
        logits[0, order[0][drop[0]]] = float("-inf")
    logits = logits / max(temperature, 1e-5)
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))
