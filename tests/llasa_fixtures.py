"""Shared helpers for the Llasa tests: one tiny random base per session, copied where a test edits it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}


def tiny_base_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llasa base built once per session (read it, never modify it: copy it first)."""
    if "tiny" not in _BUILT:
        from tts_host.plugins.llasa.base import init_base

        _BUILT["tiny"] = init_base("tiny", tmp_path_factory.mktemp("llasa") / "tiny-base", seed=0)
    return _BUILT["tiny"]


def copy_base(base: Path, dest: Path) -> Path:
    """A private copy of ``base`` that a test may damage."""
    shutil.copytree(base, dest)
    return dest


@pytest.fixture
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny Llasa base folder (model/ + codec/)."""
    return tiny_base_path(tmp_path_factory)
