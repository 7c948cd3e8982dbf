"""Fixtures for the voice library's tests: a host with the toy backend, a library, a base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from library_backend import PRESETS, ToyPlugin, write_model
from tts_host.host import PluginHost
from tts_host.speakers import Library


def toy_host() -> PluginHost:
    """A fresh host that knows only the toy backend."""
    host = PluginHost(entry_points_source=[], selection=None, strict=True)
    host.add_plugin(ToyPlugin(), "toy")
    return host.load()


@pytest.fixture
def lib(tts_home: Path):
    """A library in this test's own home, with the toy backend."""
    library = Library(tts_home, host=toy_host())
    yield library
    library.close()


@pytest.fixture
def base_folder(tmp_path: Path) -> Path:
    """A tiny toy base model folder."""
    return write_model(tmp_path / "toy-base", PRESETS["tiny"], seed=0)


@pytest.fixture
def base(lib: Library, base_folder: Path):
    """The tiny base, added to the library."""
    return lib.add_base("toy", base_folder, "tiny")


def flip_byte(path: Path, offset: int = -1) -> None:
    """Flip one byte of a (read-only) file in place, as bit rot would."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def truncate(path: Path, keep: int) -> None:
    """Cut a (read-only) file short."""
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    path.chmod(0o444)


def embedding(seed: int, dim: int = 8) -> dict[str, np.ndarray]:
    """Conditioning arrays for a voice added without a reference clip."""
    rng = np.random.default_rng(seed)
    return {"speaker_embedding": rng.standard_normal(dim).astype(np.float32)}


def clone(lib: Library, name: str, backend: str, model, references, language: str | None = None, notes: str = ""):
    """Clone voice ``name`` with ``backend`` (a name in the library's host) through the cloning workflow."""
    from tts_host.contract import CloneRequest

    return lib.backend(backend).clone(lib, model, CloneRequest(name, list(references), language=language, notes=notes))


def open_library(home: Path) -> Library:
    """The library under ``home`` with the process's plugin host (the built-in backends and installed plugins)."""
    from tts_host.host import get_host

    return Library(home, host=get_host())


def init_base(lib: Library, backend: str, preset: str, name: str | None = None, *, seed: int = 0):
    """Build and add ``backend``'s base ``preset`` (random weights)."""
    from tts_host.bases import init_base as build

    return build(lib, lib.backend(backend), preset, name, seed=seed)
