"""Shared XTTS test fixtures: one tiny random base per session (import the fixture into a test module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny XTTS base folder (seed 0), built once; copy it before changing it."""
    from tts_host.plugins.xtts.base import init_base

    return init_base("tiny", tmp_path_factory.mktemp("xtts") / "tiny-base", seed=0)


def copy_base(source: Path, target: Path) -> Path:
    """A private, writable copy of a base folder."""
    shutil.copytree(source, target)
    return target


def training_batch(base_dir: Path, clips_folder: Path, work: Path):
    """The acoustic model of ``base_dir`` and a real, collated training batch of the first two clips in
    ``clips_folder`` (espeak-ng speech), prepared under ``work``."""
    import random

    from tts_host.data.cache import FeatureCache
    from tts_host.data.prepare import prepare_dataset
    from tts_host.host import get_host
    from tts_host.plugins.xtts.features import Collator, ItemBuilder
    from tts_host.training.clips import dataset_clips

    dataset = prepare_dataset(clips_folder, work / "prepared", "B", 22050)
    components = get_host().components_for("xtts", base_dir)
    items = ItemBuilder(components["text_encoder"], lambda: components["codec"], "xtts-dvae", "1" * 64,
                        FeatureCache(work / "cache")).build(dataset_clips(dataset).all()[:2])
    acoustic = components["acoustic_model"]
    return acoustic, Collator(acoustic.mel_stats)(items, random.Random(0))
