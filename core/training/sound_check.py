"""Earlier voices judged by ear after a sequential fine-tune (``finetune --from A --eval-earlier``).

Before the new checkpoint is stored, every earlier voice of the starting checkpoint (a library voice
named after one of its speakers) speaks :mod:`tts_host.voice_eval`'s held-out sentences twice: with
its own model and with the model the fine-tune just made, and Resemblyzer's encoder scores each
against the voice's own recordings. A drop in similarity beyond ``--max-forgetting`` refuses the
fine-tune before anything is stored; any drop beyond :data:`WARNING_DROP` is a warning.

A LoRA fine-tune is not judged: every earlier LoRA voice keeps its own adapter, so none of them can
sound different.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model

WARNING_DROP = 0.05
"""A drop in speaker similarity (cosine, -1..1) that is worth a warning."""


def earlier_voices(library: Library, backend: Backend, start: Model, speaker: str) -> list[str]:
    """The library voices of ``backend`` named after a speaker of ``start`` other than ``speaker`` (none for a base)."""
    speakers = set(getattr(start, "speakers", ()) or ()) - {speaker}
    return [v.name for v in library.voices() if v.name in speakers and v.backend == backend.name]


def _new_model_folder(start_dir: Path, trained: Mapping[str, Path], backend: Backend, folder: Path) -> Path:
    """``start_dir`` (hard-linked where possible) with the fine-tune's files at their roles' paths."""

    def link_or_copy(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(start_dir, folder, copy_function=link_or_copy)
    paths = {role.role: role.path for role in backend.file_roles()}
    for role, source in trained.items():
        target = folder / paths[role]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        shutil.copy2(source, target)
    return folder


def judge_earlier_voices(library: Library, backend: Backend, names: list[str], start_dir: Path,
                         trained: Mapping[str, Path], work: Path, max_drop: float | None,
                         new_label: str) -> dict[str, dict[str, float]]:
    """``{voice: {"before", "after", "drop"}}`` of each earlier voice's similarity; refused past ``max_drop``."""
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.voice_eval import evaluate, evaluate_in_folder

    host = backend.host_or_error()
    similarity = SpeakerSimilarity()
    folder = _new_model_folder(start_dir, trained, backend, Path(work) / "judged-model")
    try:
        judged = {}
        for name in names:
            before = evaluate(library, host, name, similarity).similarity
            after = evaluate_in_folder(library, host, name, similarity, folder, new_label).similarity
            judged[name] = {"before": before, "after": after, "drop": before - after}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    check_drops(judged, max_drop)
    return judged


def check_drops(judged: Mapping[str, Mapping[str, float]], max_drop: float | None) -> None:
    """Refuse (one line naming the voice) when an earlier voice's similarity dropped by more than ``max_drop``."""
    worst = max(judged.items(), key=lambda item: item[1]["drop"], default=None)
    if max_drop is not None and worst is not None and worst[1]["drop"] > max_drop:
        name, figures = worst
        raise TTSHostError(f"earlier voice '{name}' sounds less like its speaker on the new model: similarity "
                           f"{figures['before']:.3f} -> {figures['after']:.3f} (drop {figures['drop']:.3f} > "
                           f"--max-forgetting {max_drop:g}); nothing was stored: try --replay or fewer epochs")


def similarity_warnings(judged: Mapping[str, Mapping[str, float]]) -> list[str]:
    """A warning for each earlier voice whose similarity dropped more than :data:`WARNING_DROP`."""
    return [f"earlier voice '{name}': similarity to its recordings dropped {f['drop']:.3f} ({f['before']:.3f} -> "
            f"{f['after']:.3f}), above the {WARNING_DROP} warning level: consider --replay"
            for name, f in judged.items() if f["drop"] > WARNING_DROP]
