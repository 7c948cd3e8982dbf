"""The two-stage SoVITS training loop: s2 epochs, then s1 epochs, resumable at every epoch boundary.

Every rank builds the same batches (a seeded order per stage and epoch) and trains its share of
each, its loss weighted by that share (a rank left out of a batch smaller than the world computes with
weight 0), so that averaging the gradients across ranks gives the whole batch's gradient. Rank 0 saves the state after
every epoch: the trainable weights, both stages' optimisers, the EMA shadows, every RNG and the
losses so far, so ``--resume`` continues exactly where the last epoch ended.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch

from tts_host.plugins.sovits.data import Item
from tts_host.plugins.sovits.regularisers import WeightEma
from tts_host.training.devices import Precision
from tts_host.training.distributed import Distributed


class Stage(Protocol):
    """A trainable stage (s2 or s1)."""

    def trainable(self) -> list[torch.nn.Module]: ...

    def train_step(self, items: Any, precision: Precision, sync: Any, share: float) -> dict[str, float]: ...


@dataclass
class StagePlan:
    """One stage to run: its name, the stage, its training items and epochs."""

    name: str
    stage: Stage
    items: list[Item]
    epochs: int
    batch: Any = None  # items -> what train_step takes (s2 pads into tensors; s1 takes the items)
    emas: list[WeightEma] = field(default_factory=list)


@dataclass
class LoopResult:
    """Losses per step of each stage, steps taken, where a resumed run started, the loss curve PNG."""

    losses: dict[str, list[float]]
    steps: int
    resumed_from: int
    log_png: Path | None


def batches_of(items: Sequence[Item], batch_size: int, seed: int) -> list[list[Item]]:
    """The epoch's batches: similar lengths together, order from ``seed``."""
    from tts_host.training.batching import length_bucketed_batches

    order = length_bucketed_batches([item.frames for item in items], batch_size, random.Random(seed))
    return [[items[i] for i in batch] for batch in order]


def run_stages(plans: list[StagePlan], *, batch_size: int, seed: int, state_dir: Path, resume: bool,
               precision: Precision, context: Distributed, on_step: Any = None, progress: bool = True,
               log_dir: Path | None = None) -> LoopResult:
    """Run every plan's epochs in order (see the module docstring); returns the losses."""
    from tts_host.training.distributed import average_gradients, local_rows, sum_across
    from tts_host.training.metrics import MetricLogger
    from tts_host.training.progress import StepProgress

    schedules = [[batches_of(plan.items, batch_size, seed * 1000 + 97 * index + epoch) for epoch in range(plan.epochs)]
                 for index, plan in enumerate(plans)]
    total = sum(len(batches) for schedule in schedules for batches in schedule)
    losses: dict[str, list[float]] = {plan.name: [] for plan in plans}
    position = (0, 0)
    if resume and (state_dir / "state.json").is_file():
        position, losses = _load(state_dir, plans)
    done = sum(len(b) for i, schedule in enumerate(schedules) for e, b in enumerate(schedule) if (i, e) < position)
    resumed_from, step = done, done
    logger = MetricLogger(log_dir, enabled=context.main)
    with StepProgress(total, step, "sovits fine-tune", enabled=progress and context.main) as bar:
        for index, plan in enumerate(plans):
            for module in plan.stage.trainable():
                module.train()
            for epoch, batches in enumerate(schedules[index]):
                if (index, epoch) < position:
                    continue
                for batch in batches:
                    mine = [batch[i] for i in local_rows(len(batch), context)]
                    share = len(mine) * context.world / len(batch)  # 0: a rank left out of a small batch
                    rows = mine or batch[:1]
                    values = plan.stage.train_step(plan.batch(rows) if plan.batch else rows, precision,
                                                   average_gradients, share)
                    for ema in plan.emas:
                        ema.update()
                    [loss] = sum_across([values["loss"]], context)
                    loss /= context.world  # each process returns its share-weighted part
                    step += 1
                    losses[plan.name].append(loss)
                    bar.advance(loss)
                    logger.log(step, **{f"{plan.name}_{k}": v for k, v in values.items()})
                    if on_step is not None and context.main:
                        on_step(step, total, loss)
                if context.main:
                    _save(state_dir, plans, (index, epoch + 1), losses)
            for module in plan.stage.trainable():
                module.eval()
    return LoopResult(losses, step, resumed_from, logger.close())


def _save(state_dir: Path, plans: list[StagePlan], position: tuple[int, int], losses: dict[str, list[float]]) -> None:
    from tts_host.training.seeding import capture_rng
    from tts_host.training.state import save_state

    state = {"position": list(position), "losses": losses, "rng": capture_rng()}
    for plan in plans:
        stage = plan.stage
        state[plan.name] = {
            "weights": [m.state_dict() for m in stage.trainable()],
            "optimizers": [o.state_dict() for o in _optimizers(stage)],
            "ema": [ema.shadow for ema in plan.emas],
        }
    save_state(state_dir, state)


def _load(state_dir: Path, plans: list[StagePlan]) -> tuple[tuple[int, int], dict[str, list[float]]]:
    from tts_host.training.seeding import restore_rng
    from tts_host.training.state import load_state

    state = load_state(state_dir)
    for plan in plans:
        saved = state[plan.name]
        for module, weights in zip(plan.stage.trainable(), saved["weights"]):
            module.load_state_dict(weights)
        for optimizer, optimizer_state in zip(_optimizers(plan.stage), saved["optimizers"]):
            optimizer.load_state_dict(optimizer_state)
        for ema, shadow in zip(plan.emas, saved["ema"]):
            ema.shadow = {k: v.clone() for k, v in shadow.items()}
    restore_rng(state["rng"])
    position = state["position"]
    return (int(position[0]), int(position[1])), {k: [float(x) for x in v] for k, v in state["losses"].items()}


def _optimizers(stage: Stage) -> list[torch.optim.Optimizer]:
    return [value for value in vars(stage).values() if isinstance(value, torch.optim.Optimizer)]
