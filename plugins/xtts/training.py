"""The XTTS GPT fine-tuning loop: seeded, resumable, bucketed, bf16-capable, best-by-held-out.

Only the GPT trains (as coqui's GPTTrainer: its optimizer takes ``xtts.gpt.parameters()``);
the DVAE is used only through cached codes and the HiFi-GAN decoder is not touched. Every
step's randomness (batch order, conditioning slices, dropout) is derived from the seed and the
step number, so a resumed run follows the uninterrupted trajectory exactly.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.features import Collator, TrainItem, gpt_loss
from tts_host.training.batching import length_bucketed_batches, mix_replay, shard
from tts_host.training.distributed import average_gradients, is_main_process, rank_and_world
from tts_host.training.evaluation import BestTracker, heldout_loss
from tts_host.training.metrics import MetricLogger
from tts_host.training.progress import StepProgress
from tts_host.training.seeding import capture_rng, restore_rng, seed_everything
from tts_host.training.state import load_state, save_state

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class FinetuneSettings:
    """Fine-tuning hyper-parameters (``--config FILE`` takes a YAML mapping of these keys)."""

    epochs: int = 10
    batch_size: int = 2
    lr: float = 5e-6  # coqui's XTTS recipe
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.96)
    warmup_steps: int = 0
    grad_clip: float = 0.0  # 0: no clipping
    seed: int = 1
    replay: float = 0.0  # share of earlier speakers' clips in each epoch
    text_ce_weight: float = 0.01  # coqui GPTArgs.gpt_loss_text_ce_weight
    mel_ce_weight: float = 1.0  # coqui GPTArgs.gpt_loss_mel_ce_weight
    precision: str = "auto"  # auto: bf16 autocast where the CPU/GPU supports it, else fp32
    save_every: int = 25  # steps between resumable saves (also at every epoch end and on interrupt)
    max_steps: int = 0  # 0: run every epoch
    forgetting_warning: float = 0.10  # warn when an earlier speaker's held-out loss rises more than this share

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch size must be at least 1 (got {self.batch_size})")
        if not 0 < self.lr < math.inf:
            problems.append(f"learning rate must be a positive finite number (got {self.lr})")
        if not 0.0 <= self.replay < 1.0:
            problems.append(f"replay must be a share in [0, 1) (got {self.replay})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if problems:
            raise TTSHostError("fine-tune settings: " + "; ".join(problems))
        self.betas = tuple(self.betas)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "FinetuneSettings":
        """Defaults, then ``config_file`` (YAML, optionally under a ``finetune:`` key), then non-None overrides."""
        values: dict[str, Any] = {}
        if config_file is not None:
            path = Path(config_file)
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise TTSHostError(f"{path}: cannot read the fine-tune config ({exc})") from exc
            loaded = loaded.get("finetune", loaded) if isinstance(loaded, dict) else loaded
            if not isinstance(loaded, dict):
                raise TTSHostError(f"{path}: expected a mapping of fine-tune settings")
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(loaded) - known)
            if unknown:
                raise TTSHostError(f"{path}: unknown fine-tune setting(s) {', '.join(unknown)} "
                                   f"(known: {', '.join(sorted(known))})")
            values.update(loaded)
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise TTSHostError(f"the xtts backend has no fine-tune setting {', '.join(unknown)}")
        values.update(given)
        try:
            return cls(**values)
        except TypeError as exc:
            raise TTSHostError(f"fine-tune settings: {exc}") from exc

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint record."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def use_bf16(precision: str) -> bool:
    """Whether bf16 autocast is used: asked for, or ``auto`` on a CPU with AVX512-BF16/AMX."""
    import torch

    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


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


def plan_batches(new: Sequence[TrainItem], earlier: Sequence[TrainItem], settings: FinetuneSettings
                 ) -> list[list[TrainItem]]:
    """Every step's batch, derived from the seed only: replay mixing, then length buckets, per epoch."""
    rank, world = rank_and_world()
    plan: list[list[TrainItem]] = []
    for epoch in range(settings.epochs):
        rng = random.Random(f"xtts-plan-{settings.seed}-{epoch}")
        pool = mix_replay(list(new), list(earlier), settings.replay, rng)
        batches = length_bucketed_batches([item.samples for item in pool], settings.batch_size, rng)
        plan += [[pool[i] for i in batch] for batch in shard(batches, rank, world)]
    return plan[: settings.max_steps] if settings.max_steps else plan


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
    resume: bool = False,
    log_dir: Path | None = None,
    progress: bool = True,
    label: str = "fine-tune",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``gpt`` on ``new`` (+ replayed ``earlier``) items; leaves it holding the best weights by held-out loss."""
    import torch

    from tts_host.plugins.xtts.gpt_speedups import speed_up_for_training

    speed_up_for_training(gpt)
    seed_everything(settings.seed)
    plan = plan_batches(new, earlier, settings)
    if not plan:
        raise TTSHostError("no training batches: the dataset has no training clips")
    optimizer = _optimizer(gpt, settings)
    warmup = max(settings.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    tracker = BestTracker(Path(state_dir).with_name(Path(state_dir).name + "-best"))
    train_losses: list[tuple[int, float]] = []
    heldout_losses: list[tuple[int, float]] = []
    start = 0
    resumed_from = None
    if resume:
        start = _restore(state_dir, fingerprint, gpt, optimizer, scheduler, tracker, train_losses, heldout_losses)
        resumed_from = start
    bf16 = use_bf16(settings.precision)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    heldout_batches = [collator(list(heldout[i:i + settings.batch_size]), None)
                       for i in range(0, len(heldout), settings.batch_size)]

    def evaluate() -> float:
        with autocast():
            return heldout_loss(gpt, heldout_batches,
                                lambda b: gpt_loss(gpt, b, settings.text_ce_weight, settings.mel_ce_weight)[0])

    epoch_ends = _epoch_ends(len(new), len(earlier), settings, len(plan))
    logger = MetricLogger(log_dir, enabled=is_main_process())
    for step, loss in train_losses:
        logger.log(step, loss=loss)
    for step, loss in heldout_losses:
        logger.log(step, heldout_loss=loss)
    gpt.train()
    step = start
    with StepProgress(len(plan), start, label, enabled=progress and is_main_process()) as bar:
        try:
            while step < len(plan):
                torch.manual_seed(settings.seed * 1_000_003 + step)  # dropout of this step
                batch = collator(plan[step], random.Random(f"xtts-cond-{settings.seed}-{step}"))
                with autocast():
                    loss, loss_text, loss_mel = gpt_loss(gpt, batch, settings.text_ce_weight, settings.mel_ce_weight)
                loss.backward()
                average_gradients(gpt.parameters())
                if settings.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(gpt.parameters(), settings.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)  # no gradients held through the next forward pass
                scheduler.step()
                step += 1
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TTSHostError(f"the training loss became {value} at step {step}: lower the learning rate")
                train_losses.append((step, value))
                logger.log(step, loss=value, loss_text_ce=float(loss_text.detach()),
                           loss_mel_ce=float(loss_mel.detach()), lr=scheduler.get_last_lr()[0])
                bar.advance(value)
                if step in epoch_ends or step == len(plan):
                    if heldout_batches:
                        held = evaluate()
                        heldout_losses.append((step, held))
                        logger.log(step, heldout_loss=held)
                        tracker.offer(step, held, gpt.state_dict())
                    _save(state_dir, fingerprint, step, gpt, optimizer, scheduler, tracker, train_losses,
                          heldout_losses)
                elif settings.save_every and step % settings.save_every == 0:
                    _save(state_dir, fingerprint, step, gpt, optimizer, scheduler, tracker, train_losses,
                          heldout_losses)
                if on_step is not None:
                    on_step(step, value)
        except KeyboardInterrupt:
            _save(state_dir, fingerprint, step, gpt, optimizer, scheduler, tracker, train_losses, heldout_losses)
            raise
    png = logger.close()
    del optimizer, scheduler  # free the optimizer state before the best weights are read back
    if tracker.best_step is not None and tracker.best_step != step:
        tracker.restore_into(gpt)  # in place, one tensor at a time: no second copy of the weights
    return TrainResult(gpt.state_dict(), step, train_losses, heldout_losses, tracker.best_step, resumed_from, png)


def _optimizer(gpt: Any, settings: FinetuneSettings):
    import torch

    params = [p for p in gpt.parameters() if p.requires_grad]
    options = dict(lr=settings.lr, betas=settings.betas, eps=1e-8, weight_decay=settings.weight_decay)
    try:
        return torch.optim.AdamW(params, fused=True, **options)
    except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.AdamW(params, foreach=True, **options)


def _epoch_ends(new: int, earlier: int, settings: FinetuneSettings, total: int) -> set[int]:
    ends, step = set(), 0
    _, world = rank_and_world()
    for epoch in range(settings.epochs):
        pool = len(mix_replay(list(range(new)), list(range(earlier)), settings.replay,
                              random.Random(f"xtts-plan-{settings.seed}-{epoch}")))
        step += math.ceil(math.ceil(pool / settings.batch_size) / world)
        ends.add(min(step, total))
    return ends


def _save(folder: Path, fingerprint: str, step: int, gpt, optimizer, scheduler, tracker: BestTracker,
          train_losses, heldout_losses) -> None:
    if not is_main_process():
        return
    save_state(folder, {
        "fingerprint": fingerprint, "step": step, "gpt": gpt.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "best": tracker.as_dict(), "rng": capture_rng(),
        "train_losses": [list(x) for x in train_losses], "heldout_losses": [list(x) for x in heldout_losses],
    })


def _restore(folder: Path, fingerprint: str, gpt, optimizer, scheduler, tracker: BestTracker,
             train_losses: list, heldout_losses: list) -> int:
    if not (Path(folder) / "state.json").is_file():
        raise TTSHostError("there is no interrupted run of this fine-tune to resume (run it without --resume)")
    saved = load_state(folder)
    if saved["fingerprint"] != fingerprint:
        raise TTSHostError("the interrupted run used other data, settings or starting model: "
                           "run without --resume to start again")
    gpt.load_state_dict(saved["gpt"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    tracker.load(saved["best"])
    restore_rng(saved["rng"])
    train_losses += [tuple(x) for x in saved["train_losses"]]
    heldout_losses += [tuple(x) for x in saved["heldout_losses"]]
    return int(saved["step"])


def evaluate_items(gpt: Any, collator: Collator, items: Sequence[TrainItem], settings: FinetuneSettings) -> float:
    """coqui-style evaluation loss of ``items`` (fixed conditioning slices, no masking)."""
    import torch

    size = settings.batch_size
    batches = [collator(list(items[i:i + size]), None) for i in range(0, len(items), size)]
    bf16 = use_bf16(settings.precision)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    weights = settings.text_ce_weight, settings.mel_ce_weight
    with autocast:
        return heldout_loss(gpt, batches, lambda b: gpt_loss(gpt, b, *weights)[0])


def summary(result: TrainResult) -> Mapping[str, Any]:
    """Loss figures for the checkpoint's metrics."""
    first = result.train_losses[0][1] if result.train_losses else None
    last = result.train_losses[-1][1] if result.train_losses else None
    return {"steps": result.steps, "train_loss_first": first, "train_loss_last": last,
            "heldout_loss": result.heldout_losses[-1][1] if result.heldout_losses else None,
            "best_step": result.best_step}
