"""The Llasa fine-tune loop: full or LoRA, cosine schedule with warm-up, gradient accumulation,
bf16 autocast where the hardware has it, resumable, and unchanged under ``torchrun``.

Every optimizer step consumes one *global batch* of rows. Under ``torchrun`` each of the W
processes takes batch/W rows of it through a ``DistributedSampler``; the loss is the sum of
token losses divided by the global number of labelled tokens, so W processes take exactly
the step one process would.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.data import IGNORE, Row

STATE_DIR = "state"


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
        from tts_host.plugins.llasa.lora import check_rank

        if self.lora_rank is not None:
            check_rank(self.lora_rank)
        if self.batch_size < 1 or self.grad_accumulation < 1 or self.epochs < 1:
            raise TTSHostError("batch size, gradient accumulation and epochs must be at least 1")
        if not 0 < self.learning_rate < math.inf:
            raise TTSHostError(f"learning rate must be a positive finite number, got {self.learning_rate}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TTSHostError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "FinetuneSettings":
        """Defaults, then a YAML file (optionally under ``finetune:``), then the non-``None`` overrides."""
        import yaml

        values: dict[str, Any] = {}
        if config_file is not None:
            try:
                loaded = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise TTSHostError(f"{config_file}: cannot read the fine-tune config ({exc})") from exc
            loaded = loaded.get("finetune", loaded) if isinstance(loaded, dict) else loaded
            if not isinstance(loaded, dict):
                raise TTSHostError(f"{config_file}: expected a mapping of fine-tune settings")
            values.update(loaded)
        values.update({key: value for key, value in overrides.items() if value is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TTSHostError(f"unknown llasa fine-tune setting(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(known))})")
        return cls(**values)

    def fingerprint(self) -> str:
        """What must match for a run to resume another (everything but ``save_every``)."""
        fields = {k: v for k, v in asdict(self).items() if k != "save_every"}
        return json.dumps(fields, sort_keys=True)


@dataclass
class FinetuneResult:
    """What a fine-tune produced: files by library role, losses, throughput."""

    files: dict[str, Path]
    losses: list[float]
    steps: int
    tokens: int
    seconds: float
    heldout: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0

    @property
    def tokens_per_second(self) -> float:
        """Training tokens (all positions, padding excluded) per second over this process' run."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Distributed:
    """This process' place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0


def distributed_context() -> Distributed:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on GPUs); rank 0 of 1 otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()  # without importing torch: a single process's cheap checks come first
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def pick_device(context: Distributed) -> Any:
    """The device this process trains on."""
    import torch

    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", context.rank)) % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def use_bf16(precision: str, device: Any) -> bool:
    """bf16 autocast: always for ``bf16``; for ``auto`` only on a GPU that supports it."""
    import torch

    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()


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


def token_loss_sum(model: Any, batch: dict[str, Any], device: Any, bf16: bool) -> Any:
    """Sum of next-token cross-entropy over the labelled positions of ``batch``."""
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
    # Shift the labels, not the logits: the (batch x length x vocabulary) logits are never copied.
    targets = F.pad(batch["labels"], (0, 1), value=IGNORE)[:, 1:].to(device)
    logits = logits if logits.dtype == torch.float32 else logits.float()
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def evaluate(model: Any, rows: Sequence[Row], pad_id: int, *, batch_size: int = 8, bf16: bool = False) -> float:
    """Mean per-token loss of ``model`` on ``rows`` (speech tokens and end of speech)."""
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
            total += float(token_loss_sum(model, batch, device, bf16))
            count += labelled_tokens(batch)
    model.train(was_training)
    return total / max(count, 1)


def _save_state(state_dir: Path, model: Any, optimizer: Any, scheduler: Any, step: int, losses: list[float],
                settings: FinetuneSettings) -> None:
    """Write the resumable state (trainable weights, optimizer, scheduler, RNG, step) with the shared toolkit."""
    from tts_host.training.seeding import capture_rng
    from tts_host.training.state import save_state

    trainable = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_state(state_dir, {"trainable": trainable, "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(), "rng": capture_rng(), "step": step,
                           "losses": losses, "settings": settings.fingerprint()})


def _load_state(state_dir: Path, model: Any, optimizer: Any, scheduler: Any,
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
    restore_rng(state["rng"])
    return int(state["step"]), [float(loss) for loss in state["losses"]]


def finetune(
    model: Any,
    rows: Sequence[Row],
    work_dir: Path,
    settings: FinetuneSettings,
    *,
    pad_id: int,
    context: Distributed | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    progress: bool = False,
    log_dir: Path | None = None,
) -> FinetuneResult:
    """Train ``model`` (plain or peft) on ``rows``; state under ``work_dir/state`` makes it resumable.

    Returns losses per optimizer step (the global-batch loss) and token throughput. The caller
    saves the final weights (rank 0). ``progress`` shows a rich bar on rank 0; ``log_dir`` gets
    TensorBoard scalars and a loss-curve PNG.
    """
    import torch
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import get_cosine_schedule_with_warmup

    from tts_host.training.metrics import MetricLogger
    from tts_host.training.progress import StepProgress
    from tts_host.training.seeding import seed_everything

    context = context or distributed_context()
    device = pick_device(context)
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
    state_dir = Path(work_dir) / STATE_DIR
    step, losses = 0, []
    if (state_dir / "state.json").is_file():
        step, losses = _load_state(state_dir, model, optimizer, scheduler, settings)
    resumed_from = step
    bf16 = use_bf16(settings.precision, device)
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
                count = torch.tensor(float(sum(labelled_tokens(b) for b in micro)))
                if context.world > 1:
                    torch.distributed.all_reduce(count)
                optimizer.zero_grad(set_to_none=True)
                step_loss = torch.zeros(())
                for index, batch in enumerate(micro):
                    last = index == len(micro) - 1
                    sync = trained.no_sync() if context.world > 1 and not last else nullcontext()
                    with sync:
                        loss = token_loss_sum(trained, batch, device, bf16) / count.to(device) * context.world
                        loss.backward()
                    step_loss += loss.detach().cpu() / context.world
                    tokens += int(batch["attention_mask"].sum())
                if context.world > 1:
                    torch.distributed.all_reduce(step_loss)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(float(step_loss))
                bar.advance(losses[-1])
                logger.log(step, loss=losses[-1], learning_rate=scheduler.get_last_lr()[0])
                if on_step and context.main:
                    on_step(step, total_steps, losses[-1])
                if context.main and settings.save_every and step % settings.save_every == 0 and step < total_steps:
                    _save_state(state_dir, model, optimizer, scheduler, step, losses, settings)
                if step >= total_steps:
                    break
            epoch, offset = epoch + 1, 0
    seconds = time.perf_counter() - started
    logger.close()
    if context.main:
        _save_state(state_dir, model, optimizer, scheduler, step, losses, settings)
    model.eval()
    return FinetuneResult(files={}, losses=losses, steps=step, tokens=tokens, seconds=seconds,
                          resumed_from=resumed_from)

