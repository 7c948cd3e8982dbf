"""SoVITS fine-tune settings: two stages (s2 then s1), each with its own epochs and learning rate,
and the opt-in regularisers (all off by default; see docs/backends/sovits.md for the measured table).

``--epochs`` and ``--lr`` on the command line set both stages; a YAML file (``--config``)
sets each stage's own keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tts_host.errors import TTSHostError
from tts_host.training.devices import PRECISIONS


@dataclass
class SovitsSettings:
    """How to fine-tune a SoVITS voice (defaults: GPT-SoVITS's own recipe where it has one)."""

    s2_epochs: int = 8
    s2_learning_rate: float = 1e-4
    text_lr_ratio: float = 0.4
    segment_frames: int = 32
    c_mel: float = 45.0
    c_kl: float = 1.0
    s2_gan: bool = True
    s1_epochs: int = 15
    s1_learning_rate: float = 1e-4
    batch_size: int = 4
    epochs: int | None = None
    learning_rate: float | None = None
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    spec_augment: bool = False
    mixup_alpha: float = 0.0
    layer_drop: float = 0.0
    dropout: float | None = None
    precision: str = "fp32"
    seed: int = 0
    lora_rank: int | None = None

    def __post_init__(self) -> None:
        if self.lora_rank is not None:
            raise TTSHostError("backend 'sovits' has no LoRA fine-tune: leave out --lora")
        if self.epochs is not None:
            self.s2_epochs = self.s1_epochs = self.epochs
        if self.learning_rate is not None:
            self.s2_learning_rate = self.s1_learning_rate = self.learning_rate
        if self.s2_epochs < 0 or self.s1_epochs < 0 or self.s2_epochs + self.s1_epochs == 0:
            raise TTSHostError("s2_epochs and s1_epochs must be at least 0, and one of them more")
        if self.batch_size < 1 or self.segment_frames < 1:
            raise TTSHostError("batch_size and segment_frames must be at least 1")
        for name in ("s2_learning_rate", "s1_learning_rate"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise TTSHostError(f"{name} must be a positive finite number, got {value}")
        if not 0 <= self.ema_decay < 1:
            raise TTSHostError(f"ema_decay is in [0, 1) (0: off), got {self.ema_decay}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise TTSHostError(f"dropout is in [0, 1) (unset: the models' own rates), got {self.dropout}")
        if not 0 <= self.layer_drop < 1:
            raise TTSHostError(f"layer_drop is in [0, 1) (0: off), got {self.layer_drop}")
        if self.mixup_alpha < 0 or self.grad_clip < 0:
            raise TTSHostError("mixup_alpha and grad_clip must be at least 0 (0: off)")
        if self.precision not in PRECISIONS:
            raise TTSHostError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
