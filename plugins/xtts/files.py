"""The files of an XTTS model folder, declared once: every other module names a file by its role."""

from __future__ import annotations

from tts_host.backend import FileRole

FILE_ROLES = [
    FileRole("config", "config.json", description="coqui XttsConfig (architecture and inference settings)"),
    FileRole("model", "model.pth", description="base Xtts weights: GPT, HiFi-GAN decoder, speaker encoder"),
    FileRole("dvae", "dvae.pth", protected=True, description="DiscreteVAE state dict (audio -> codes)"),
    FileRole("mel_stats", "mel_stats.pth", protected=True, description="mel normalisation (80 values)"),
    FileRole("vocab", "vocab.json", protected=True, description="VoiceBpeTokenizer vocabulary"),
    FileRole("speakers_xtts", "speakers_xtts.pth", required=False,
             description="coqui's built-in speakers (published folders)"),
    FileRole("gpt", "gpt.safetensors", required=False, description="fine-tuned GPT weights (checkpoints)"),
    FileRole("speakers", "speakers.safetensors", required=False,
             description="conditioning of every speaker a checkpoint serves"),
    FileRole("lora_config", "lora/adapter_config.json", required=False,
             description="LoRA adapter config (peft) of a LoRA voice"),
    FileRole("lora_weights", "lora/adapter_model.safetensors", required=False,
             description="LoRA adapter weights (peft), applied on top of the GPT"),
]

FILES: dict[str, str] = {role.role: role.path for role in FILE_ROLES}
"""Role -> file name in the model folder (``FILES["dvae"]`` is ``dvae.pth``)."""
