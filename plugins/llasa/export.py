"""``voices export --format hf``: a plain Hugging Face folder (LoRA merged) plus the codec.

The folder loads with ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer`` alone
and follows the published Llasa inference recipe: chat template, ``<|SPEECH_GENERATION_END|>``
as end of sequence, ``<|s_N|>`` tokens decoded by the X-Codec-2.0 model in ``codec/``.
``voice.json`` says how to prompt this voice (its speaker tag, or its reference transcript
and speech tokens for a cloned voice).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from tts_host.folders import new_folder
from tts_host.plugins.llasa import ADAPTER_DIR, CODEC_DIR, MODEL_DIR
from tts_host.hf import quiet_transformers
from tts_host.plugins.llasa.base import validate_model_dir
from tts_host.plugins.llasa.layout import speech_token

VOICE_FILE = "voice.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def voice_description(conditioning: Mapping[str, np.ndarray], voice_name: str | None,
                      speakers: list[str] | None = None) -> dict:
    """How to prompt the exported voice: speaker tag or reference prefix."""
    from tts_host.conditioning import array_text

    if "ref_codes" in conditioning:
        codes = [int(c) for c in np.asarray(conditioning["ref_codes"]).reshape(-1)]
        return {"voice": voice_name, "mode": "reference", "ref_text": array_text(conditioning["ref_text"]),
                "assistant_prefix": "<|SPEECH_GENERATION_START|>" + "".join(speech_token(c) for c in codes)}
    tag = array_text(conditioning["speaker_tag"]) if "speaker_tag" in conditioning else None
    return {"voice": voice_name, "mode": "speaker_tag" if tag else "plain", "speaker_tag": tag,
            "text_format": f"[{tag}] {{text}}" if tag else "{text}", "speakers": speakers or []}


def export_hf(model_folder: Path, out: Path, *, conditioning: Mapping[str, np.ndarray] | None = None,
              voice_name: str | None = None) -> Path:
    """Write the merged LM, its tokenizer, ``codec/`` and ``voice.json`` to ``out`` (created whole or not at all)."""
    from tts_host.plugins.llasa.lora import load_lm

    quiet_transformers()
    model_folder, out = Path(model_folder), Path(out)
    with new_folder(out, "export folder") as staging:
        adapter = model_folder / ADAPTER_DIR
        model = load_lm(model_folder / MODEL_DIR, adapter if (adapter / "adapter_config.json").is_file() else None,
                        merge=True)
        model.save_pretrained(staging)
        for name in TOKENIZER_FILES:
            if (model_folder / MODEL_DIR / name).is_file():
                shutil.copyfile(model_folder / MODEL_DIR / name, staging / name)
        shutil.copytree(model_folder / CODEC_DIR, staging / CODEC_DIR)
        description = voice_description(conditioning or {}, voice_name)
        (staging / VOICE_FILE).write_text(json.dumps(description, indent=1, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        validate_model_dir(staging, staging / CODEC_DIR)
    return out
