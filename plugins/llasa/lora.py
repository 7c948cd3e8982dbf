"""LoRA through peft on a Hugging Face LM: configs for a Llama-style LM, loading it with an adapter.

Checks of stored adapters and ranks are core's (:mod:`tts_host.lora`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tts_host.lora import check_rank

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


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
