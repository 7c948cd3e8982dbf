"""Backend presets shipped as YAML in the ``tts_host.configs`` package (``configs/BACKEND/NAME.yaml``)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from tts_host.errors import TTSHostError

PRESETS_PACKAGE = "tts_host.configs"


def preset_names(backend: str) -> list[str]:
    """Names of ``backend``'s shipped presets, sorted."""
    folder = resources.files(PRESETS_PACKAGE) / backend
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def load_preset(backend: str, name: str) -> dict[str, Any]:
    """``backend``'s preset ``name`` as a dict; an unknown name is a one-line error listing the known ones."""
    import yaml

    names = preset_names(backend)
    if name not in names:
        raise TTSHostError(f"unknown {backend} preset '{name}' (presets: {', '.join(names) or 'none'})")
    return yaml.safe_load((resources.files(PRESETS_PACKAGE) / backend / f"{name}.yaml").read_text(encoding="utf-8"))
