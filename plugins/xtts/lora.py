"""LoRA voices on the XTTS GPT: which layers take adapters, and the adapter of a model folder.

coqui's GPT-2 blocks use transformers' ``Conv1D`` (weights stored input x output), so the
config sets ``fan_in_fan_out``; peft sets each ``Linear`` layer (the heads) the other way.
Target groups: ``attention`` (each block's ``c_attn`` and ``c_proj``), ``mlp`` (``c_fc`` and
``c_proj``), ``embeddings`` (text and audio-code embeddings), ``heads`` (text and audio-code
output heads). The conditioning encoder and perceiver never take adapters, so a LoRA voice
leaves every other voice's conditioning latent as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.files import FILES

if TYPE_CHECKING:
    from peft import LoraConfig

TARGET_GROUPS = {
    "attention": r"gpt\.h\.\d+\.attn\.(c_attn|c_proj)",
    "mlp": r"gpt\.h\.\d+\.mlp\.(c_fc|c_proj)",
    "embeddings": r"(text|mel)_embedding",
    "heads": r"(text|mel)_head",
}
DEFAULT_TARGETS = ("attention", "mlp")
ADAPTER_DIR = str(Path(FILES["lora_weights"]).parent)  # "lora": the adapter's folder inside a model folder


def check_targets(targets: Sequence[str]) -> list[str]:
    """Target group names, each one of :data:`TARGET_GROUPS`; anything else is a one-line error."""
    unknown = [t for t in targets if t not in TARGET_GROUPS]
    if unknown or not targets:
        raise TTSHostError(f"LoRA targets must be some of {', '.join(TARGET_GROUPS)}; got {list(targets)}")
    return list(dict.fromkeys(targets))


def lora_config(rank: int, alpha: float | None, dropout: float, targets: Sequence[str]) -> LoraConfig:
    """A peft ``LoraConfig`` for the XTTS GPT (alpha defaults to 2 x rank)."""
    from peft import LoraConfig

    pattern = "|".join(f"({TARGET_GROUPS[t]})" for t in check_targets(targets))
    return LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=pattern,
                      fan_in_fan_out=True, bias="none")


def folder_adapter(folder: Path) -> Path | None:
    """The adapter folder of a model folder, when it is a LoRA voice's."""
    adapter = Path(folder) / ADAPTER_DIR
    return adapter if (Path(folder) / FILES["lora_weights"]).is_file() else None
