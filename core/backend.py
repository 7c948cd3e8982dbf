"""The backend contract: a named recipe that composes components and does the work.

A backend knows how to build or import a base model, which of its files matter (and which
must never change), how to validate them, and how to fine-tune, clone, synthesise and
export. The voice library stores what a backend makes; it knows no backend internals.

What the voice library needs from a backend:

* :meth:`Backend.file_roles` -- the files of a model folder, each a :class:`FileRole`: a role
  name, the path relative to the folder that the upstream library expects, whether every
  model (base or checkpoint) must have it, and whether it is *protected*: a protected file
  must stay byte-identical to the base's (for XTTS: ``dvae``, ``mel_stats``, ``vocab``).
* :meth:`Backend.architecture` -- the architecture config recorded with a base (a JSON-able
  dict read from the folder); checkpoints must stay compatible with it.
* :meth:`Backend.validate` -- checks a materialised folder (exact state-dict keys and shapes,
  finite values, dtype, config against the recorded architecture) and raises
  :class:`~tts_host.errors.ValidationError` naming the file, the expected and the actual value.
* :meth:`Backend.conditioning` -- zero-shot cloning for ``voices add``: model folder +
  reference clips -> named numpy arrays, stored by the library as one safetensors blob.
* :meth:`Backend.export` -- writes a voice in a backend-specific format (``voices export
  --format``); the library's own ``.ttsvoice`` archive needs nothing from the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    import numpy as np

    from tts_host.host import PluginHost


@dataclass(frozen=True)
class FileRole:
    """One file of a model folder.

    ``role`` is a short stable name (``model``, ``dvae``); ``path`` is where the upstream
    library expects it, relative to the model folder (``dvae.pth``). ``required`` files must
    be in every base and (after inheritance from the base) every checkpoint. ``protected``
    files must stay byte-identical to the base's through every fine-tune.
    """

    role: str
    path: str
    required: bool = True
    protected: bool = False
    description: str = ""


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

    # -- what the voice library needs ----------------------------------------------------
    @abstractmethod
    def file_roles(self) -> list[FileRole]:
        """Every file a model folder of this backend may hold (required, optional, protected)."""

    def architecture(self, folder: Path) -> dict[str, Any]:
        """The architecture config to record with a base imported from ``folder`` (JSON-able)."""
        return {}

    @abstractmethod
    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        """Check a materialised model folder against ``architecture`` (the base's record).

        Check exact state-dict keys and shapes, finite values, dtypes and config
        compatibility; raise :class:`~tts_host.errors.ValidationError` (file, expected,
        actual) on the first problem. Return ``None`` when the folder is sound.
        """

    def conditioning(self, model_folder: Path, references: Sequence[Path]) -> dict[str, np.ndarray]:
        """Zero-shot clone: speaker conditioning computed from reference clips.

        ``model_folder`` is a materialised base or checkpoint; the returned arrays (e.g.
        ``gpt_cond_latent``, ``speaker_embedding``) are stored with the voice as safetensors.
        """
        raise TTSHostError(f"backend '{self.name}' cannot clone a voice from reference clips")

    def export_formats(self) -> list[str]:
        """Formats :meth:`export` writes, besides the library's own ``ttsvoice``."""
        return []

    def export(self, voice: Any, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write ``voice`` (a :class:`tts_host.speakers.Voice`) in format ``fmt`` to ``out``.

        ``model_folder`` is the voice's materialised model, ``conditioning`` its stored arrays.
        Returns the path written. Unknown formats raise :class:`~tts_host.errors.TTSHostError`.
        """
        known = ", ".join(["ttsvoice", *self.export_formats()])
        raise TTSHostError(f"backend '{self.name}' cannot export format '{fmt}' (formats: {known})")

    def role(self, name: str) -> FileRole:
        """The declared role ``name``, or an error listing the roles."""
        for role in self.file_roles():
            if role.role == name:
                return role
        known = ", ".join(r.role for r in self.file_roles())
        raise TTSHostError(f"backend '{self.name}' has no file role '{name}' (roles: {known})")
