"""The s1 stage: the text-to-semantic GPT trained with cross-entropy on each clip's semantic codes.

Upstream sums the loss and steps ScaledAdam at a constant 0.002 every 4 batches; here the loss is the
mean per predicted token (so held-out losses compare across batch sizes) and the optimiser AdamW at
``s1_learning_rate``. Phonemes get zero BERT features except Chinese with a ``bert/`` folder (the items'
cached features).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from tts_host.plugins.sovits.components import TextToSemanticModel
from tts_host.plugins.sovits.data import Item
from tts_host.plugins.sovits.regularisers import set_dropout
from tts_host.plugins.sovits.settings import SovitsSettings
from tts_host.training.devices import Precision
from tts_host.training.distributed import Distributed


class S1Stage:
    """One s1 model (the acoustic model component) and its optimiser, on one device."""

    def __init__(self, acoustic: TextToSemanticModel, settings: SovitsSettings, device: torch.device,
                 context: Distributed) -> None:
        self.model = acoustic.model
        self.model.layer_drop = settings.layer_drop
        if settings.dropout is not None:
            set_dropout([self.model], settings.dropout)
        self.settings, self.device, self.context = settings, device, context
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
        for i, item in enumerate(items):
            if item.bert is not None:
                bert[i, :, : item.bert.shape[1]] = torch.from_numpy(item.bert)
        lengths = torch.tensor([len(item.phonemes) for item in items])
        code_lengths = torch.tensor([len(item.codes) for item in items])
        return tuple(x.to(self.device) for x in (phonemes, lengths, bert, codes, code_lengths))

    def train_step(self, items: Sequence[Item], precision: Precision,
                   sync: Callable[[list[torch.nn.Parameter]], None], share: float = 1.0) -> dict[str, float]:
        """One optimiser step on ``items``; returns this process's part of the batch's mean token loss (times
        the world size: the loop averages the parts over processes).

        Each process divides its summed loss by the tokens of the whole batch (all processes), so the
        averaged gradients are the whole batch's; ``share`` 0 marks a process with no part of the batch.
        """
        from tts_host.training.distributed import sum_across

        with precision.autocast():
            total, tokens = self.model.loss(*self._tensors(items))
        if share == 0:
            total, tokens = total * 0.0, tokens * 0
        [everyone] = sum_across([float(tokens)], self.context)
        loss = total / max(everyone, 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        precision.backward(loss * self.context.world)
        sync(list(self.model.parameters()))
        if self.settings.grad_clip > 0:
            precision.clip(self.optimizer, self.settings.grad_clip)
        precision.step(self.optimizer)
        return {"loss": float(loss.detach()) * self.context.world}

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
