"""XTTS presets (``configs/xtts/*.yaml``) and the config.json a base folder carries."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from tts_host.errors import TTSHostError

PRESETS_PACKAGE = "tts_host.configs"
DVAE_KEY = "dvae"  # our own top-level config.json key; coqui-tts ignores unknown keys

# The DiscreteVAE that coqui's GPTTrainer builds (and every published dvae.pth matches).
STANDARD_DVAE: dict[str, int] = {
    "num_tokens": 1024,
    "codebook_dim": 512,
    "hidden_dim": 512,
    "num_resnet_blocks": 3,
    "num_layers": 2,
}


def preset_names() -> list[str]:
    """The presets shipped in ``configs/xtts``."""
    folder = resources.files(PRESETS_PACKAGE) / "xtts"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The parsed preset ``name``; an unknown name is a one-line error listing the presets."""
    if name not in preset_names():
        raise TTSHostError(f"unknown xtts preset '{name}' (presets: {', '.join(preset_names())})")
    text = (resources.files(PRESETS_PACKAGE) / "xtts" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def dvae_architecture(config: dict[str, Any]) -> dict[str, int]:
    """The DiscreteVAE dimensions of a config.json dict (the standard DVAE when unrecorded)."""
    recorded = config.get(DVAE_KEY) or {}
    if not recorded:
        num_audio = config.get("model_args", {}).get("gpt_num_audio_tokens")
        return {**STANDARD_DVAE, "num_tokens": int(num_audio) - 2} if num_audio else dict(STANDARD_DVAE)
    return {key: int(recorded.get(key, value)) for key, value in STANDARD_DVAE.items()}
