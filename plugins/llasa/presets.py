"""The Llasa presets shipped in ``tts_host.configs/llasa/*.yaml``."""

from __future__ import annotations

from importlib import resources
from typing import Any

from tts_host.errors import TTSHostError


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    folder = resources.files("tts_host.configs") / "llasa"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The preset ``name`` as a dict; an unknown name is a one-line error listing the known ones."""
    import yaml

    if name not in preset_names():
        raise TTSHostError(f"unknown llasa preset '{name}' (presets: {', '.join(preset_names())})")
    text = (resources.files("tts_host.configs") / "llasa" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
