"""Building a base with random weights (``tts-host base init``): the backend builds, the library stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Base
    from tts_host.backend import Backend


def init_base(library: Library, backend: Backend, preset: str, name: str | None = None, *, seed: int = 0) -> Base:
    """Build ``backend``'s base ``preset`` (random weights, seeded) and add it to ``library`` as ``name``."""
    from tts_host.speakers.names import check_name

    if preset not in backend.presets():
        raise TTSHostError(
            f"backend '{backend.name}' has no preset '{preset}' (presets: {', '.join(backend.presets()) or 'none'})"
        )
    name = check_name(name or f"{backend.name}-{preset}", "base")
    with library.scratch_folder("init") as tmp:
        folder = backend.init_base(preset, tmp / name, seed=seed)
        return library.add_base(backend, folder, name)
