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
