"""The opt-in regularisers of a SoVITS fine-tune (none is in upstream GPT-SoVITS; each is off by default).

- :class:`WeightEma`: an exponential moving average of the weights; the shadow weights are the ones
  evaluated, saved and spoken with.
- :func:`spec_augment`: SpecAugment-style time and frequency masks on the spectrogram s2's posterior
  and reference encoders read (the reconstruction target stays the clean audio).
- :func:`mix_voices`: speaker Mixup: each item's voice vector is interpolated with that of another
  item of the same speaker in the batch (lambda ~ Beta(alpha, alpha)).
- stochastic depth in s1 is ``TextToSemantic.layer_drop`` (whole post-norm layers skipped, deeper
  layers more often); gradient clipping is ``grad_clip``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn


def set_dropout(modules: Sequence[nn.Module], rate: float) -> None:
    """Every dropout in ``modules`` (``nn.Dropout`` layers and attention-probability dropout) at ``rate``."""
    for module in modules:
        for part in module.modules():
            if isinstance(part, nn.Dropout):
                part.p = rate
            elif isinstance(part, nn.MultiheadAttention):
                part.dropout = rate


class WeightEma:
    """Shadow copies of ``module``'s floating-point state, updated after every optimiser step."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = module
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        """``shadow = decay * shadow + (1 - decay) * current``."""
        for name, value in self.module.state_dict().items():
            if name in self.shadow:
                self.shadow[name].lerp_(value.detach(), 1.0 - self.decay)

    def swap_in(self) -> None:
        """Put the shadow weights into the module (the live ones are kept in the shadow's place)."""
        state = self.module.state_dict()
        live = {k: state[k].detach().clone() for k in self.shadow}
        self.module.load_state_dict({**state, **self.shadow})
        self.shadow = live


def spec_augment(spec: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None,
                 time_masks: int = 2, time_width: float = 0.05, freq_masks: int = 2, freq_width: int = 27
                 ) -> torch.Tensor:
    """``spec`` ``[b, bins, t]`` with up to ``time_masks`` time bands (each at most ``time_width`` of the
    item's frames) and ``freq_masks`` frequency bands (at most ``freq_width`` bins) set to zero."""
    out = spec.clone()
    bins = spec.size(1)
    for index, length in enumerate(lengths.tolist()):
        for _ in range(time_masks):
            width = int(torch.randint(0, max(1, int(length * time_width)) + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, length - width + 1), (1,), generator=generator))
            out[index, :, start:start + width] = 0
        for _ in range(freq_masks):
            width = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, bins - width + 1), (1,), generator=generator))
            out[index, start:start + width, :] = 0
    return out


def mix_voices(voices: torch.Tensor, speakers: Sequence[str], alpha: float,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Voice vectors ``[b, gin, 1]``, each mixed with another same-speaker item's (itself when it has none)."""
    if alpha <= 0:
        return voices
    partners = list(_partners(speakers, generator))
    lam = torch.distributions.Beta(alpha, alpha).sample((len(speakers),)).to(voices)
    lam = torch.maximum(lam, 1 - lam).view(-1, 1, 1)  # the item's own voice keeps the larger share
    return lam * voices + (1 - lam) * voices[partners]


def _partners(speakers: Sequence[str], generator: torch.Generator | None) -> Iterator[int]:
    for index, speaker in enumerate(speakers):
        same = [j for j, other in enumerate(speakers) if other == speaker and j != index]
        yield same[int(torch.randint(0, len(same), (1,), generator=generator))] if same else index
