"""LoRA through peft: configs for a Llama-style LM, loading a trainable model, checking adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.layout import LlasaBaseError

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def check_rank(rank: Any) -> int:
    """A LoRA rank as a positive int; anything else is a one-line error."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise TTSHostError(f"LoRA rank must be a positive integer (e.g. --lora 8), got {rank!r}")
    return rank


def lora_config(rank: int, alpha: int | None = None) -> Any:
    """A peft ``LoraConfig`` on every attention and MLP projection (alpha defaults to 2 x rank)."""
    from peft import LoraConfig

    rank = check_rank(rank)
    return LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0, target_modules=list(TARGET_MODULES),
                      task_type="CAUSAL_LM")


def load_lm(model_dir: Path, adapter_dir: Path | None = None, *, trainable: bool = False, merge: bool = False,
            dtype: Any = None) -> Any:
    """The LM of ``model_dir`` with the adapter in ``adapter_dir`` applied (merged when ``merge``)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, dtype=dtype)
    if adapter_dir is None:
        return model
    from peft import PeftModel

    if merge:
        untie_output_embeddings(model)

    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable and not merge)
    return model.merge_and_unload() if merge else model


def untie_output_embeddings(model: Any) -> None:
    """Give ``lm_head`` its own copy of tied input embeddings, so merging a LoRA on it leaves the inputs alone."""
    import torch

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if not getattr(config, "tie_word_embeddings", False):
        return
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    config.tie_word_embeddings = False
    model.config.tie_word_embeddings = False


def validate_adapter(adapter_dir: Path) -> None:
    """Check a stored adapter: its config names LoRA with a positive rank; its weights are LoRA-only and finite."""
    import torch
    from safetensors import safe_open

    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise LlasaBaseError(str(path), "a file (adapters come as config + weights)", "missing")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or not isinstance(config.get("r"), int) or config["r"] <= 0:
        raise LlasaBaseError(str(config_path), "a LoRA config with a positive rank r",
                             f"peft_type {config.get('peft_type')!r}, r {config.get('r')!r}")
    rank = config["r"]
    with safe_open(str(weights_path), framework="pt") as handle:
        keys = list(handle.keys())
        if not keys:
            raise LlasaBaseError(str(weights_path), "LoRA weights", "no tensors")
        for key in keys:
            if "lora_A" not in key and "lora_B" not in key:
                raise LlasaBaseError(str(weights_path), "only lora_A / lora_B weights", f"tensor {key}")
            shape = handle.get_slice(key).get_shape()
            if ("lora_A" in key and shape[0] != rank) or ("lora_B" in key and shape[1] != rank):
                raise LlasaBaseError(str(weights_path), f"{key} of rank {rank}", f"shape {list(shape)}")
            if not torch.isfinite(handle.get_tensor(key)).all():
                raise LlasaBaseError(str(weights_path), f"finite values in {key}", "NaN or inf")
