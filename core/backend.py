"""The backend contract: a named recipe that composes components and does the work.

A backend knows how to build or import a base model, which of its files matter (and which
must never change), how to validate them, and how to fine-tune, clone, synthesise and
export. The voice library stores what a backend makes; it knows no backend internals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from tts_host.host import PluginHost


class Backend(ABC):
    """Base class of every backend; a :class:`~tts_host.components.BackendFactory` builds one."""

    name: ClassVar[str]

    def __init__(self, host: PluginHost | None = None, **options: Any) -> None:
        self.host = host
        self.options = options

    @abstractmethod
    def presets(self) -> list[str]:
        """Names of the presets ``init_base`` accepts (e.g. ``tiny``, ``small``, ``v2``)."""

    @abstractmethod
    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """Build a base model folder offline with random weights; returns the folder."""
