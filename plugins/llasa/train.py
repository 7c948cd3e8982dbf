"""The Llasa fine-tune loop: full or LoRA, cosine schedule with warm-up, gradient accumulation,
the shared device and precision policy (:mod:`tts_host.training.devices`), resumable, and
unchanged under ``torchrun``.

Every optimizer step consumes one *global batch* of rows. Under ``torchrun`` each of the W
processes takes batch/W rows of it through a ``DistributedSampler``; the loss is the sum of
token losses divided by the global number of labelled tokens, so W processes take exactly
the step one process would.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.data import IGNORE, Row
from tts_host.training.devices import PRECISIONS, Precision
from tts_host.training.distributed import Distributed



@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune; ``lora_rank`` ``None`` means a full fine-tune."""

    learning_rate: float = 5e-5
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    batch_size: int = 4
    grad_accumulation: int = 1
    epochs: int = 1
    max_steps: int | None = None
    max_length: int = 2048
    lora_rank: int | None = None
    lora_alpha: int | None = None
    precision: str = "auto"
    seed: int = 0
    save_every: int = 0

    def __post_init__(self) -> None:
        from tts_host.lora import check_rank

        if self.lora_rank is not None:
            check_rank(self.lora_rank)
        if self.batch_size < 1 or self.grad_accumulation < 1 or self.epochs < 1:
            raise TTSHostError("batch size, gradient accumulation and epochs must be at least 1")
        if not 0 < self.learning_rate < math.inf:
            raise TTSHostError(f"learning rate must be a positive finite number, got {self.learning_rate}")
        if self.precision not in PRECISIONS:
            raise TTSHostError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "FinetuneSettings":
        """Defaults, then a YAML file (optionally under ``finetune:``), then the non-``None`` overrides."""
        from tts_host.training.settings import load_settings

        return load_settings(cls, "llasa", config_file, overrides)

    def fingerprint(self) -> str:
        """What must match for a run to resume another (everything but ``save_every``)."""
        fields = {k: v for k, v in asdict(self).items() if k != "save_every"}
        return json.dumps(fields, sort_keys=True)


@dataclass
class FinetuneResult:
    """What a fine-tune did: the loss of every step, throughput, where it resumed, its loss curve."""

    losses: list[float]
    steps: int
    tokens: int
    seconds: float
    resumed_from: int = 0
    log_png: Path | None = None

    @property
    def tokens_per_second(self) -> float:
        """Training tokens (all positions, padding excluded) per second over this process' run."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def collate(rows: Sequence[Row], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``labels`` (-100 on padding) and ``attention_mask`` tensors."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, :n] = torch.tensor(row.input_ids)
        labels[i, :n] = torch.tensor(row.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def labelled_tokens(batch: dict[str, Any]) -> int:
    """Number of positions that carry a loss (labels shifted by one, as the LM predicts the next token)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def token_loss_sum(model: Any, batch: dict[str, Any], device: Any, precision: Precision | None = None) -> Any:
    """Sum of next-token cross-entropy over the labelled positions of ``batch`` (autocast as ``precision`` says)."""
    import torch
    import torch.nn.functional as F

    with precision.autocast() if precision is not None else nullcontext():
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
    # Shift the labels, not the logits: the (batch x length x vocabulary) logits are never copied.
    targets = F.pad(batch["labels"], (0, 1), value=IGNORE)[:, 1:].to(device)
    logits = logits if logits.dtype == torch.float32 else logits.float()
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def evaluate(model: Any, rows: Sequence[Row], pad_id: int, *, batch_size: int = 8,
             precision: Precision | None = None) -> float:
    """Mean per-token loss of ``model`` on ``rows`` (speech tokens and end of speech), on the model's device."""
    import torch

    if not rows:
        return float("nan")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start:start + batch_size], pad_id)
            total += float(token_loss_sum(model, batch, device, precision))
            count += labelled_tokens(batch)
    model.train(was_training)
    return total / max(count, 1)


def _save_state(state_dir: Path, model: Any, optimizer: Any, scheduler: Any, precision: Precision, step: int,
                losses: list[float], settings: FinetuneSettings) -> None:
    """Write the resumable state (trainable weights, optimizer, scheduler, loss scaler, RNG, step)."""
    from tts_host.training.seeding import capture_rng
    from tts_host.training.state import save_state

    trainable = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_state(state_dir, {"trainable": trainable, "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(), "precision": precision.state_dict(),
                           "rng": capture_rng(), "step": step,
                           "losses": losses, "settings": settings.fingerprint()})


def _load_state(state_dir: Path, model: Any, optimizer: Any, scheduler: Any, precision: Precision,
                settings: FinetuneSettings) -> tuple[int, list[float]]:
    """Restore a state written by :func:`_save_state`; returns (step, losses). Refuses other settings."""
    import torch

    from tts_host.training.seeding import restore_rng
    from tts_host.training.state import load_state

    state = load_state(state_dir)
    if state["settings"] != settings.fingerprint():
        raise TTSHostError(f"cannot resume from {state_dir}: it was written with other settings "
                           f"(remove the folder to start over)")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    precision.load_state_dict(state.get("precision", {}))
    restore_rng(state["rng"])
    return int(state["step"]), [float(loss) for loss in state["losses"]]


def finetune(
    model: Any,
    rows: Sequence[Row],
    state_dir: Path,
    settings: FinetuneSettings,
    *,
    pad_id: int,
    context: Distributed | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    progress: bool = False,
    log_dir: Path | None = None,
) -> FinetuneResult:
    """Train ``model`` (plain or peft) on ``rows``; the state saved in ``state_dir`` makes it resumable.

    Returns losses per optimizer step (the global-batch loss) and token throughput. The caller
    saves the final weights (rank 0). ``progress`` shows a rich bar on rank 0; ``log_dir`` gets
    TensorBoard scalars and a loss-curve PNG.
    """
    import torch
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import get_cosine_schedule_with_warmup

    from tts_host.training.devices import pick_device, precision_policy
    from tts_host.training.distributed import distributed_context, sum_across
    from tts_host.training.metrics import MetricLogger
    from tts_host.training.progress import StepProgress
    from tts_host.training.seeding import seed_everything

    context = context or distributed_context()
    device = pick_device(context)
    precision = precision_policy(settings.precision, device)
    if settings.batch_size % context.world:
        raise TTSHostError(f"batch size {settings.batch_size} is not divisible by the {context.world} processes")
    per_rank = settings.batch_size // context.world
    if len(rows) < settings.batch_size * settings.grad_accumulation:
        raise TTSHostError(f"{len(rows)} training rows are fewer than one optimizer step needs "
                           f"({settings.batch_size} x {settings.grad_accumulation}); lower --batch-size")
    seed_everything(settings.seed)
    model.to(device).train()
    trained = model
    if context.world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = DistributedSampler(list(range(len(rows))), num_replicas=context.world, rank=context.rank,
                                 shuffle=True, seed=settings.seed, drop_last=True)
    loader = DataLoader(list(range(len(rows))), batch_size=per_rank, sampler=sampler, drop_last=True,
                        collate_fn=lambda indices: collate([rows[i] for i in indices], pad_id))
    steps_per_epoch = len(loader) // settings.grad_accumulation
    total_steps = settings.max_steps or steps_per_epoch * settings.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay,
                                  fused=True)  # one fused kernel per step, on CPU and GPU
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(settings.warmup_ratio * total_steps), total_steps)
    step, losses = 0, []
    if (state_dir / "state.json").is_file():
        step, losses = _load_state(state_dir, model, optimizer, scheduler, precision, settings)
    resumed_from = step
    tokens, started = 0, time.perf_counter()
    epoch, offset = divmod(step, steps_per_epoch)
    logger = MetricLogger(log_dir, enabled=context.main)
    with StepProgress(total_steps, step, "llasa fine-tune", enabled=progress and context.main) as bar:
        while step < total_steps:
            sampler.set_epoch(epoch)
            batches = iter(loader)
            for _ in range(offset * settings.grad_accumulation):  # resuming mid-epoch: skip what was trained
                next(batches)
            for _ in range(steps_per_epoch - offset):
                micro = [next(batches) for _ in range(settings.grad_accumulation)]
                [count] = sum_across([sum(labelled_tokens(b) for b in micro)], context, device)
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for index, batch in enumerate(micro):
                    last = index == len(micro) - 1
                    sync = trained.no_sync() if context.world > 1 and not last else nullcontext()
                    with sync:
                        loss = token_loss_sum(trained, batch, device, precision) / count * context.world
                        precision.backward(loss)  # DDP averages the gradients over the world
                    step_loss += float(loss.detach()) / context.world
                    tokens += int(batch["attention_mask"].sum())
                [step_loss] = sum_across([step_loss], context, device)
                precision.clip(optimizer, 1.0)
                precision.step(optimizer)
                scheduler.step()
                step += 1
                losses.append(step_loss)
                bar.advance(losses[-1])
                logger.log(step, loss=losses[-1], learning_rate=scheduler.get_last_lr()[0])
                if on_step and context.main:
                    on_step(step, total_steps, losses[-1])
                if context.main and settings.save_every and step % settings.save_every == 0 and step < total_steps:
                    _save_state(state_dir, model, optimizer, scheduler, precision, step, losses, settings)
                if step >= total_steps:
                    break
            epoch, offset = epoch + 1, 0
    seconds = time.perf_counter() - started
    png = logger.close()
    if context.main:
        _save_state(state_dir, model, optimizer, scheduler, precision, step, losses, settings)
    model.eval()
    return FinetuneResult(losses=losses, steps=step, tokens=tokens, seconds=seconds, resumed_from=resumed_from,
                          log_png=png)

