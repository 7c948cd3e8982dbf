"""The s1 stage: the text-to-semantic GPT trained with cross-entropy on each clip's semantic codes.

Upstream sums the loss and steps ScaledAdam at a constant 0.002 every 4 batches; here the loss is the
mean per predicted token (so held-out losses compare across batch sizes) and the optimiser AdamW at
``s1_learning_rate``. Phonemes get zero BERT features except Chinese with a ``bert/`` folder.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from tts_host.plugins.sovits.components import TextToSemanticModel
from tts_host.plugins.sovits.data import Item
from tts_host.plugins.sovits.settings import SovitsSettings
from tts_host.training.devices import Precision


class S1Stage:
    """One s1 model (the acoustic model component) and its optimiser, on one device."""

    def __init__(self, acoustic: TextToSemanticModel, settings: SovitsSettings, device: torch.device) -> None:
        self.model = acoustic.model
        self.model.layer_drop = settings.layer_drop
        self.settings, self.device = settings, device
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.s1_learning_rate, betas=(0.9, 0.95),
                                           weight_decay=0.01)

    def trainable(self) -> list[torch.nn.Module]:
        """The modules whose weights this stage changes."""
        return [self.model]

    def _tensors(self, items: Sequence[Item]) -> tuple[torch.Tensor, ...]:
        n = max(len(item.phonemes) for item in items)
        t = max(len(item.codes) for item in items)
        phonemes = torch.zeros(len(items), n, dtype=torch.long)
        codes = torch.zeros(len(items), t, dtype=torch.long)
        for i, item in enumerate(items):
            phonemes[i, : len(item.phonemes)] = torch.tensor(item.phonemes)
            codes[i, : len(item.codes)] = torch.from_numpy(item.codes)
        bert = torch.zeros(len(items), self.model.bert_dim, n)
        lengths = torch.tensor([len(item.phonemes) for item in items])
        code_lengths = torch.tensor([len(item.codes) for item in items])
        return tuple(x.to(self.device) for x in (phonemes, lengths, bert, codes, code_lengths))

    def train_step(self, items: Sequence[Item], precision: Precision,
                   sync: Callable[[list[torch.nn.Parameter]], None]) -> dict[str, float]:
        """One optimiser step on ``items``; returns the mean token loss."""
        with precision.autocast():
            total, tokens = self.model.loss(*self._tensors(items))
        loss = total / tokens.clamp(min=1)
        self.optimizer.zero_grad(set_to_none=True)
        precision.backward(loss)
        sync(list(self.model.parameters()))
        if self.settings.grad_clip > 0:
            precision.clip(self.optimizer, self.settings.grad_clip)
        precision.step(self.optimizer)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def heldout(self, items: Sequence[Item]) -> float:
        """Mean cross-entropy per predicted token over ``items``."""
        if not items:
            return float("nan")
        was = self.model.training
        self.model.eval()
        total = tokens = 0.0
        for item in items:
            loss, count = self.model.loss(*self._tensors([item]))
            total, tokens = total + float(loss), tokens + float(count)
        self.model.train(was)
        return total / max(tokens, 1.0)
