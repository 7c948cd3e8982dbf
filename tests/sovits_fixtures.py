"""Shared helpers for the SoVITS tests: one tiny random base and prepared espeak-ng speakers per session."""

from __future__ import annotations

from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}

FAST_CONFIG = """\
finetune:
  s2_epochs: 4
  s1_epochs: 5
  s2_learning_rate: 0.0005
  s1_learning_rate: 0.002
  batch_size: 4
  segment_frames: 16
  s2_gan: false
"""
"""A quick fine-tune (no discriminator): enough steps for both stages' losses to fall on the tiny preset."""


def tiny_base_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SoVITS base folder built once per session (read it, never modify it: copy it first)."""
    if "tiny" not in _BUILT:
        from tts_host.plugins.sovits.base import init_base

        _BUILT["tiny"] = init_base("tiny", tmp_path_factory.mktemp("sovits") / "sovits-tiny", seed=0)
    return _BUILT["tiny"]


def prepared_speaker(tmp_path_factory: pytest.TempPathFactory, speaker_clips, speaker: str, count: int = 8,
                     offset: int = 0) -> Path:
    """A 32 kHz prepared dataset folder of ``count`` espeak-ng clips of ``speaker``, sentences from ``offset`` on
    (built once per session)."""
    import shutil

    key = f"data-{speaker}-{count}-{offset}"
    if key not in _BUILT:
        from tts_host.data import prepare_dataset

        source = tmp_path_factory.mktemp("sovits-clips") / speaker
        source.mkdir()
        for wav, _ in speaker_clips(speaker, offset + count)[offset:]:
            shutil.copy(wav, source / wav.name)
            shutil.copy(wav.with_suffix(".txt"), source / wav.with_suffix(".txt").name)
        out = tmp_path_factory.mktemp("sovits-data") / speaker
        prepare_dataset(source, out, speaker, 32000)
        _BUILT[key] = out
    return _BUILT[key]


def fast_config(folder: Path, **changes: object) -> Path:
    """:data:`FAST_CONFIG` (with ``changes`` appended under ``finetune:``) written into ``folder``."""
    text = FAST_CONFIG + "".join(f"  {key}: {str(value).lower() if isinstance(value, bool) else value}\n"
                                 for key, value in changes.items())
    path = folder / "sovits-fast.yaml"
    path.write_text(text, encoding="utf-8")
    return path
