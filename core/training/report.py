"""One metrics schema for every backend's fine-tune, and how it is printed.

A checkpoint's ``metrics`` (stored by the library, shown by ``voices show``)::

    steps, resumed_from, best_step          optimizer steps; the step a resumed run began at;
                                            the step whose weights were kept (None: the last)
    train_loss_first, train_loss_last       the training loss at the first and last step
    losses                                  the training loss of every step
    replay                                  share of earlier speakers' clips in training
    heldout   {speaker: {before, after, rise}}  held-out loss of every speaker with held-out
                                            clips (the new one included), before and after
    forgetting {speaker: {before, after, rise}} the same for the earlier speakers only
    backend   {...}                         figures only one backend has (tokens/s, LoRA rank)

``rise`` is ``after / before - 1``: +0.05 means the loss rose 5 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


TRAINING_FIELDS = ("steps", "resumed_from", "best_step", "train_loss_first", "train_loss_last", "replay", "heldout",
                   "forgetting", "stages", "similarity")
"""The metrics ``voices show`` prints for a voice's last fine-tune (every backend alike)."""


@dataclass
class TrainingLog:
    """What a backend's training reports: the loss of every step and where it stopped."""

    losses: list[float]
    steps: int
    resumed_from: int | None = None
    best_step: int | None = None
    log_png: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A multi-stage backend's figures per stage (``steps``, ``train_loss_first``/``_last``, ``heldout`` by speaker)."""


def change(before: float, after: float) -> dict[str, float]:
    """``{before, after, rise}`` of one speaker's held-out loss."""
    rise = after / before - 1.0 if before else 0.0
    return {"before": before, "after": after, "rise": rise}


def finetune_metrics(log: TrainingLog, speaker: str, before: Mapping[str, float], after: Mapping[str, float],
                     replay: float) -> dict[str, Any]:
    """The stored metrics of a fine-tune of ``speaker`` (held-out losses by speaker, before and after)."""
    heldout = {name: change(before[name], after[name]) for name in before if name in after}
    return {
        "steps": log.steps,
        "resumed_from": log.resumed_from,
        "best_step": log.best_step,
        "train_loss_first": log.losses[0] if log.losses else None,
        "train_loss_last": log.losses[-1] if log.losses else None,
        "losses": list(log.losses),
        "replay": replay,
        "heldout": heldout,
        "forgetting": {name: figures for name, figures in heldout.items() if name != speaker},
        "stages": dict(log.stages),
        "backend": dict(log.extra),
    }


def forgetting_warnings(metrics: Mapping[str, Any], threshold: float) -> list[str]:
    """A warning for every earlier speaker whose held-out loss rose more than ``threshold``."""
    return [f"earlier speaker '{name}': held-out loss rose {f['rise'] * 100:.1f}% ({f['before']:.4f} -> "
            f"{f['after']:.4f}), above the {threshold * 100:.0f}% warning level: consider --replay"
            for name, f in metrics.get("forgetting", {}).items() if f["rise"] > threshold]


def summary_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The fine-tune's figures as the CLI prints them (every backend alike)."""
    lines = []
    if metrics.get("train_loss_first") is not None:
        lines.append(f"training loss {metrics['train_loss_first']:.4f} -> {metrics['train_loss_last']:.4f} "
                     f"over {metrics['steps']} steps")
    for name, figures in metrics.get("heldout", {}).items():
        earlier = name in metrics.get("forgetting", {})
        label = f"earlier speaker {name}" if earlier else f"speaker {name}"
        lines.append(f"{label}: held-out loss {figures['before']:.4f} -> {figures['after']:.4f} "
                     f"({figures['rise'] * 100:+.1f}%)")
    for stage, figures in (metrics.get("stages") or {}).items():
        if figures.get("train_loss_first") is not None:
            lines.append(f"{stage}: training loss {figures['train_loss_first']:.4f} -> {figures['train_loss_last']:.4f} "
                         f"over {figures['steps']} steps")
        for name, held in figures.get("heldout", {}).items():
            if held.get("before") is not None and held.get("after") is not None:
                lines.append(f"{stage}: speaker {name} held-out loss {held['before']:.4f} -> {held['after']:.4f}")
    for name, figures in (metrics.get("similarity") or {}).items():
        lines.append(f"earlier voice {name}: similarity to its recordings {figures['before']:.3f} -> "
                     f"{figures['after']:.3f} ({-figures['drop']:+.3f})")
    if metrics.get("best_step") is not None and metrics["best_step"] != metrics.get("steps"):
        lines.append(f"kept the weights of step {metrics['best_step']} (lowest held-out loss)")
    lines += [f"skipped {s['clip']}: {s['reason']}" for s in metrics.get("backend", {}).get("skipped", [])]
    return lines
