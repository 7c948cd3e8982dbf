"""The DiscreteVAE dimensions an XTTS config.json records (coqui-tts does not record them)."""

from __future__ import annotations

from typing import Any

DVAE_KEY = "dvae"  # our own top-level config.json key; coqui-tts ignores unknown keys

# The DiscreteVAE that coqui's GPTTrainer builds (and every published dvae.pth matches).
STANDARD_DVAE: dict[str, int] = {
    "num_tokens": 1024,
    "codebook_dim": 512,
    "hidden_dim": 512,
    "num_resnet_blocks": 3,
    "num_layers": 2,
}


def dvae_architecture(config: dict[str, Any]) -> dict[str, int]:
    """The DiscreteVAE dimensions of a config.json dict (the standard DVAE when unrecorded)."""
    recorded = config.get(DVAE_KEY) or {}
    if not recorded:
        num_audio = config.get("model_args", {}).get("gpt_num_audio_tokens")
        return {**STANDARD_DVAE, "num_tokens": int(num_audio) - 2} if num_audio else dict(STANDARD_DVAE)
    return {key: int(recorded.get(key, value)) for key, value in STANDARD_DVAE.items()}
