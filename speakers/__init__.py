"""The voice library: a verified, crash-safe, content-addressed speaker registry.

``Library`` (in :mod:`tts_host.speakers.library`) is the Python API; records are plain
frozen dataclasses (:class:`Base`, :class:`Checkpoint`, :class:`Voice`, :class:`FileEntry`).
See ``docs/library.md`` for the layout, the guarantees and the commands. Names are exported
lazily, so ``tts_host.speakers.listing`` can be used without importing the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Library": "library", "Problem": "library", "default_home": "home",
    "InvalidNameError": "names", "check_name": "names",
    "Base": "records", "Checkpoint": "records", "FileEntry": "records", "Voice": "records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(import_module(f"tts_host.{module}" if module == "home" else f"tts_host.speakers.{module}"), name)
    raise AttributeError(f"module 'tts_host.speakers' has no attribute {name!r}")
