"""The XTTS GPT fine-tuning loop: seeded, resumable, bucketed, on the GPU when there is one, best-by-held-out.

Only the GPT trains (as coqui's GPTTrainer: its optimizer takes ``xtts.gpt.parameters()``);
the DVAE is used only through cached codes and the HiFi-GAN decoder is not touched. Every
step's randomness (batch order, conditioning slices, dropout) is derived from the seed and the
step number, so a resumed run follows the uninterrupted trajectory exactly.

Under ``torchrun`` every step's global batch is cut into one contiguous part per rank; each
rank weighs its part's two cross-entropy means by its share of the global batch's targets, so
the gradients summed over ranks are those of coqui's loss of the whole batch: W processes take
the step one process takes (dropout masks aside, which depend on the tensors' shapes).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.features import Collator, TrainItem, gpt_loss, target_counts, to_device
from tts_host.training.batching import length_bucketed_batches, mix_replay
from tts_host.training.devices import PRECISIONS, Precision, on_device, pick_device, precision_policy
from tts_host.training.distributed import (Distributed, average_gradients, broadcast_from_main,
                                           distributed_context, local_rows, sum_across)
from tts_host.training.evaluation import BestTracker, heldout_loss
from tts_host.training.metrics import MetricLogger
from tts_host.training.progress import StepProgress
from tts_host.training.seeding import capture_rng, restore_rng, seed_everything
from tts_host.training.settings import load_settings
from tts_host.training.state import load_state, save_state


FULL_LEARNING_RATE = 5e-6  # coqui's XTTS recipe
LORA_LEARNING_RATE = 2e-4  # adapters start at zero and are small: they need larger steps
LORA_CHECKPOINTING = 2  # at v2 on 2 cores: peak about a quarter of coqui's, a step about 5% slower than none


@dataclass
class FinetuneSettings:
    """Fine-tuning hyper-parameters (``--config FILE`` takes a YAML mapping of these keys)."""

    epochs: int = 10
    batch_size: int = 2  # clips per optimizer step, over all ranks together
    learning_rate: float | None = None  # None: 5e-6 for a full fine-tune (coqui's recipe), 2e-4 for LoRA
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.96)
    warmup_steps: int = 0
    grad_clip: float = 0.0  # 0: no clipping
    seed: int = 1
    text_ce_weight: float = 0.01  # coqui GPTArgs.gpt_loss_text_ce_weight
    mel_ce_weight: float = 1.0  # coqui GPTArgs.gpt_loss_mel_ce_weight
    precision: str = "auto"  # see tts_host.training.devices: bf16 where native, fp16 on other GPUs, else fp32
    save_every: int = 25  # steps between resumable saves (also at every epoch end and on interrupt)
    max_steps: int = 0  # 0: run every epoch
    dropout: float | None = None  # the GPT's dropout rate while training (None: the model's own, 0.1 in XTTS v2)
    lora_rank: int | None = None  # a LoRA adapter of this rank on the frozen GPT (None: a full fine-tune)
    lora_alpha: float | None = None  # LoRA scaling numerator (None: 2 x rank)
    lora_dropout: float = 0.0  # dropout on the adapter's input
    lora_targets: tuple[str, ...] = ("attention", "mlp")  # of attention, mlp, embeddings, heads
    # recompute every Nth GPT-2 block's activations in the backward pass instead of keeping them (0: none,
    # 1: all). None: every 2nd for LoRA, whose point is memory; none for a full fine-tune, whose weights and
    # Adam state dominate its memory anyway
    activation_checkpointing: int | None = None

    def __post_init__(self) -> None:
        from tts_host.lora import check_rank
        from tts_host.plugins.xtts.lora import check_targets

        if self.learning_rate is None:
            self.learning_rate = LORA_LEARNING_RATE if self.lora_rank is not None else FULL_LEARNING_RATE
        if self.lora_rank is not None:
            check_rank(self.lora_rank)
        if self.activation_checkpointing is None:
            self.activation_checkpointing = LORA_CHECKPOINTING if self.lora_rank is not None else 0
        self.lora_targets = tuple(check_targets(self.lora_targets))
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch size must be at least 1 (got {self.batch_size})")
        if not 0 < self.learning_rate < math.inf:
            problems.append(f"learning rate must be a positive finite number (got {self.learning_rate})")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0.0 <= self.lora_dropout < 1.0:
            problems.append(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if self.lora_alpha is not None and not 0 < self.lora_alpha < math.inf:
            problems.append(f"lora_alpha must be a positive number (got {self.lora_alpha})")
        if isinstance(self.activation_checkpointing, bool) or not isinstance(self.activation_checkpointing, int) \
                or self.activation_checkpointing < 0:
            problems.append("activation_checkpointing must be 0 (none) or N (every Nth block) "
                            f"(got {self.activation_checkpointing!r})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if problems:
            raise TTSHostError("fine-tune settings: " + "; ".join(problems))
        self.betas = tuple(self.betas)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "FinetuneSettings":
        """Defaults, then ``config_file`` (YAML, optionally under ``finetune:``), then non-None overrides."""
        return load_settings(cls, "xtts", config_file, overrides)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint record."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


@dataclass
class TrainResult:
    """What a run produced: the chosen GPT weights (the trained model's own tensors) and how the losses went."""

    gpt_state: dict[str, Any]
    steps: int
    train_losses: list[tuple[int, float]]
    heldout_losses: list[tuple[int, float]]
    best_step: int | None
    resumed_from: int | None = None
    log_png: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def plan_batches(new: Sequence[TrainItem], earlier: Sequence[TrainItem], settings: FinetuneSettings,
                 replay: float = 0.0) -> list[list[TrainItem]]:
    """Every step's global batch, derived from the seed only: ``replay`` mixing, then length buckets, per epoch."""
    return _plan(new, earlier, settings, replay)[0]


def _plan(new: Sequence[TrainItem], earlier: Sequence[TrainItem], settings: FinetuneSettings, replay: float
          ) -> tuple[list[list[TrainItem]], set[int]]:
    """:func:`plan_batches` and the steps that end an epoch."""
    plan: list[list[TrainItem]] = []
    ends: set[int] = set()
    for epoch in range(settings.epochs):
        rng = random.Random(f"xtts-plan-{settings.seed}-{epoch}")
        pool = mix_replay(list(new), list(earlier), replay, rng)
        batches = length_bucketed_batches([item.samples for item in pool], settings.batch_size, rng)
        plan += [[pool[i] for i in batch] for batch in batches]
        ends.add(len(plan))
    if settings.max_steps:
        plan = plan[: settings.max_steps]
        ends = {min(end, len(plan)) for end in ends}
    return plan, ends


def train_gpt(
    gpt: Any,
    collator: Collator,
    new: Sequence[TrainItem],
    earlier: Sequence[TrainItem],
    heldout: Sequence[TrainItem],
    settings: FinetuneSettings,
    state_dir: Path,
    *,
    fingerprint: str,
    replay: float = 0.0,
    resume: bool = False,
    log_dir: Path | None = None,
    progress: bool = True,
    label: str = "fine-tune",
    on_step: Callable[[int, int, float], None] | None = None,
    context: Distributed | None = None,
) -> TrainResult:
    """Train ``gpt`` on ``new`` items (+ a ``replay`` share of ``earlier`` ones); leaves it holding the best weights.

    The GPT trains on :func:`~tts_host.training.devices.pick_device`'s device in the settings'
    precision and is moved back where it was before returning. ``context`` (default: joined
    from ``torchrun``'s environment) shares every step's batch among the ranks; rank 0 alone
    saves the resumable state and the best weights (which every rank ends with) and calls
    ``on_step(step, total, loss)``.
    """
    import torch

    from tts_host.plugins.xtts.gpt_speedups import speed_up_for_training

    context = context or distributed_context()
    device = pick_device(context)
    precision = precision_policy(settings.precision, device)
    speed_up_for_training(gpt)
    precision.store_frozen_weights(gpt)  # a LoRA run's frozen base: half the memory, the same maths
    checkpointing(gpt, settings.activation_checkpointing)
    kept = _kept_weights(gpt)
    if settings.dropout is not None:
        set_dropout(gpt, settings.dropout)
    seed_everything(settings.seed)
    plan, epoch_ends = _plan(new, earlier, settings, replay)
    if not plan:
        raise TTSHostError("no training batches: the dataset has no training clips")
    tracker = BestTracker(Path(state_dir).with_name(Path(state_dir).name + "-best"))
    train_losses: list[tuple[int, float]] = []
    heldout_losses: list[tuple[int, float]] = []
    with on_device(gpt, device):
        optimizer = _optimizer(gpt, settings)
        warmup = max(settings.warmup_steps, 0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        parts = (optimizer, scheduler, precision, tracker, train_losses, heldout_losses)
        resumed_from = _restore(state_dir, fingerprint, kept(), *parts) if resume else None
        heldout_batches = [to_device(collator(list(heldout[i:i + settings.batch_size]), None), device)
                           for i in range(0, len(heldout), settings.batch_size)]
        logger = MetricLogger(log_dir, enabled=context.main)
        for step, loss in train_losses:
            logger.log(step, loss=loss)
        for step, loss in heldout_losses:
            logger.log(step, heldout_loss=loss)
        gpt.train()
        step = resumed_from or 0
        with StepProgress(len(plan), step, label, enabled=progress and context.main) as bar:
            try:
                while step < len(plan):
                    torch.manual_seed(settings.seed * 1_000_003 + step)  # dropout of this step
                    value, text, mel = _backward(gpt, collator, plan[step], step, settings, context, device,
                                                 precision)
                    average_gradients(gpt.parameters())
                    if settings.grad_clip > 0:
                        precision.clip(optimizer, settings.grad_clip)
                    precision.step(optimizer)
                    optimizer.zero_grad(set_to_none=True)  # no gradients held through the next forward pass
                    scheduler.step()
                    step += 1
                    if not math.isfinite(value):
                        raise TTSHostError(f"the training loss became {value} at step {step}: "
                                           "lower the learning rate")
                    train_losses.append((step, value))
                    logger.log(step, loss=value, loss_text_ce=text, loss_mel_ce=mel,
                               learning_rate=scheduler.get_last_lr()[0])
                    bar.advance(value)
                    if step in epoch_ends or step == len(plan):
                        if heldout_batches:
                            with precision.autocast():
                                held = heldout_loss(gpt, heldout_batches, lambda b: gpt_loss(
                                    gpt, b, settings.text_ce_weight, settings.mel_ce_weight)[0])
                            heldout_losses.append((step, held))
                            logger.log(step, heldout_loss=held)
                            if context.main:
                                tracker.offer(step, held, kept())
                        _save(state_dir, fingerprint, step, kept(), *parts, context)
                    elif settings.save_every and step % settings.save_every == 0:
                        _save(state_dir, fingerprint, step, kept(), *parts, context)
                    if on_step is not None and context.main:
                        on_step(step, len(plan), value)
            except KeyboardInterrupt:
                _save(state_dir, fingerprint, step, kept(), *parts, context)
                raise
        png = logger.close()
        del optimizer, scheduler, parts  # free the optimizer state before the best weights are read back
        if context.main and tracker.best_step is not None and tracker.best_step != step:
            tracker.restore_into(kept())  # in place, one tensor at a time: no second copy of the weights
        broadcast_from_main(gpt.state_dict().values(), context)  # every rank ends with rank 0's choice
    return TrainResult(gpt.state_dict(), step, train_losses, heldout_losses, tracker.best_step, resumed_from, png)


def _backward(gpt: Any, collator: Collator, items: Sequence[TrainItem], step: int, settings: FinetuneSettings,
              context: Distributed, device: Any, precision: Precision) -> tuple[float, float, float]:
    """Back-propagate this rank's share of coqui's loss of the global batch ``items``.

    coqui's loss is text-weight x (mean text CE) + mel-weight x (mean audio-code CE) over the
    batch's targets. This rank's part contributes its two means, each weighted by its share of
    the batch's targets, so the parts' gradients add up to the whole batch's. Returns the whole
    batch's (loss, text CE, mel CE), the same on every rank.
    """
    rows = local_rows(len(items), context)
    counts: tuple[int, int] = (0, 0)
    sums: tuple[float, float] = (0.0, 0.0)
    losses = None
    if rows:
        batch = to_device(collator(items, random.Random(f"xtts-cond-{settings.seed}-{step}"), rows), device)
        counts = target_counts(gpt, batch)
        with precision.autocast():
            _, loss_text, loss_mel = gpt_loss(gpt, batch, settings.text_ce_weight, settings.mel_ce_weight)
        losses = (loss_text, loss_mel)
        # a part whose only audio targets coqui masks has a NaN mel mean and no share of the mel loss
        sums = tuple(float(loss.detach()) * count if count else 0.0 for loss, count in zip(losses, counts))
    text_count, mel_count, text_sum, mel_sum = sum_across([*counts, *sums], context, device)
    if losses is not None:
        weights = (settings.text_ce_weight, settings.mel_ce_weight)
        totals = (text_count, mel_count)
        share = sum(loss * (weight * (count / total))
                    for loss, weight, count, total in zip(losses, weights, counts, totals) if count)
        precision.backward(share * context.world)  # average_gradients divides by the world size
    text, mel = text_sum / text_count, mel_sum / mel_count
    return settings.text_ce_weight * text + settings.mel_ce_weight * mel, text, mel


def _kept_weights(gpt: Any) -> Callable[[], dict[str, Any]]:
    """The live tensors a run saves and restores: every tensor of a full fine-tune, an adapter's alone for LoRA."""
    from tts_host.lora import trainable_state

    lora = any(not p.requires_grad for p in gpt.parameters())
    return (lambda: trainable_state(gpt)) if lora else gpt.state_dict


def checkpointing(gpt: Any, every: int) -> None:
    """Activation checkpointing of every ``every``-th GPT-2 block of ``gpt`` (0: off), transformers' own, non-reentrant:
    gradients reach adapters behind frozen inputs; torch replays the RNG state, so dropout masks repeat."""
    from functools import partial

    from torch.utils.checkpoint import checkpoint

    # not activation_checkpointing_enable(): it would also make the input embeddings require gradients,
    # and coqui's GPT-2 has none (its embeddings are the GPT's own); non-reentrant checkpoints need none
    gpt.gpt._set_gradient_checkpointing(enable=every > 0, every_n_layers=max(every, 1),
                                        gradient_checkpointing_func=partial(checkpoint, use_reentrant=False))


def set_dropout(gpt: Any, rate: float) -> None:
    """Every dropout of ``gpt`` (embeddings, residual branches, attention probabilities) at ``rate``."""
    from tts_host.training.dropout import Dropout

    for module in gpt.modules():
        if isinstance(module, Dropout):
            module.p = rate


def _optimizer(gpt: Any, settings: FinetuneSettings) -> Any:
    import torch

    params = [p for p in gpt.parameters() if p.requires_grad]
    options = dict(lr=settings.learning_rate, betas=settings.betas, eps=1e-8, weight_decay=settings.weight_decay)
    try:
        return torch.optim.AdamW(params, fused=True, **options)
    except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.AdamW(params, foreach=True, **options)


def _save(folder: Path, fingerprint: str, step: int, weights: dict[str, Any], optimizer: Any, scheduler: Any,
          precision: Precision, tracker: BestTracker, train_losses: list, heldout_losses: list,
          context: Distributed) -> None:
    if not context.main:
        return
    save_state(folder, {
        "fingerprint": fingerprint, "step": step, "gpt": weights, "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "precision": precision.state_dict(), "best": tracker.as_dict(),
        "rng": capture_rng(), "train_losses": [list(x) for x in train_losses],
        "heldout_losses": [list(x) for x in heldout_losses],
    })


def _restore(folder: Path, fingerprint: str, weights: dict[str, Any], optimizer: Any, scheduler: Any,
             precision: Precision, tracker: BestTracker, train_losses: list, heldout_losses: list) -> int:
    if not (Path(folder) / "state.json").is_file():
        raise TTSHostError("there is no interrupted run of this fine-tune to resume (run it without --resume)")
    saved = load_state(folder)
    if saved["fingerprint"] != fingerprint:
        raise TTSHostError("the interrupted run used other data, settings or starting model: "
                           "run without --resume to start again")
    if set(saved["gpt"]) != set(weights):
        raise TTSHostError("the interrupted run trained other weights: run without --resume to start again")
    for key, value in saved["gpt"].items():
        weights[key].copy_(value)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    precision.load_state_dict(saved.get("precision", {}))
    tracker.load(saved["best"])
    restore_rng(saved["rng"])
    train_losses += [tuple(x) for x in saved["train_losses"]]
    heldout_losses += [tuple(x) for x in saved["heldout_losses"]]
    return int(saved["step"])


def evaluate_items(gpt: Any, collator: Collator, items: Sequence[TrainItem], settings: FinetuneSettings,
                   device: Any = None) -> float:
    """coqui-style evaluation loss of ``items`` (fixed conditioning slices, no masking) on ``device``.

    ``device`` defaults to the training device (:func:`~tts_host.training.devices.pick_device`);
    the GPT is moved back where it was afterwards.
    """
    device = device if device is not None else pick_device()
    precision = precision_policy(settings.precision, device)
    size = settings.batch_size
    weights = settings.text_ce_weight, settings.mel_ce_weight
    batches = (to_device(collator(list(items[i:i + size]), None), device) for i in range(0, len(items), size))
    with on_device(gpt, device), precision.autocast():
        return heldout_loss(gpt, batches, lambda b: gpt_loss(gpt, b, *weights)[0])
