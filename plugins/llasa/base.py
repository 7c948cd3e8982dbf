"""Llasa base folders: build one offline from a preset, and validate one before use.

A Llasa base is a folder with two Hugging Face folders inside:

- ``model/``: the causal LM (``config.json``, ``*.safetensors``, ``generation_config.json``) and its
  tokenizer (``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``);
- ``codec/``: the X-Codec-2.0 model (``config.json``, ``model.safetensors``, ``preprocessor_config.json``).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_host.errors import TTSHostError
from tts_host.folders import new_folder
from tts_host.plugins.llasa import CODEC_DIR, MODEL_DIR, SAMPLE_RATE
from tts_host.plugins.llasa.codec import codebook_size, read_codec_config
from tts_host.plugins.llasa.layout import LlasaBaseError, SpeechLayout
from tts_host.hf import quiet_transformers
from tts_host.presets import load_preset
from tts_host.oserrors import disk_full_errors



@dataclass(frozen=True)
class BaseInfo:
    """What validation learned about a base."""

    model_dir: Path
    codec_dir: Path
    layout: SpeechLayout
    codebook_size: int
    hop_length: int
    vocab_size: int



def generation_defaults(preset: dict[str, Any]) -> dict[str, Any]:
    """The sampling defaults of a preset (the model card's), as generation-config fields."""
    gen = preset.get("generation", {})
    return {
        "do_sample": True,
        "temperature": float(gen.get("temperature", 0.8)),
        "top_p": float(gen.get("top_p", 1.0)),
        "top_k": int(gen.get("top_k", 50)),
        "repetition_penalty": float(gen.get("repetition_penalty", 1.0)),
        "max_length": int(gen.get("max_length", 2048)),
    }


def init_base(preset: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Build a random Llasa base (LM, tokenizer, codec) from ``preset`` into ``out_dir``; returns it.

    The folder appears complete or not at all: it is written beside its destination and renamed
    (a full disk is a one-line error naming the folder).
    """
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        Xcodec2Config,
        Xcodec2FeatureExtractor,
        Xcodec2Model,
    )

    from tts_host.plugins.llasa.tokenizer import END_OF_TURN, build_tokenizer

    settings = load_preset("llasa", preset)
    out_dir = Path(out_dir)
    quiet_transformers()
    with disk_full_errors(out_dir), new_folder(out_dir) as staging:
        torch.manual_seed(seed)
        codec_config = Xcodec2Config(**settings["codec"])
        codes = int(math.prod(codec_config.quantization_levels))
        Xcodec2Model(codec_config).save_pretrained(staging / CODEC_DIR)
        Xcodec2FeatureExtractor(sampling_rate=SAMPLE_RATE, hop_length=codec_config.hop_length).save_pretrained(
            staging / CODEC_DIR)

        tokenizer = build_tokenizer(codes, bpe_vocab_size=int(settings["tokenizer"]["bpe_vocab_size"]))
        layout = SpeechLayout.from_tokenizer(tokenizer)
        lm_config = LlamaConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.convert_tokens_to_ids(END_OF_TURN),
            pad_token_id=tokenizer.pad_token_id,
            **settings["lm"],
        )
        model = LlamaForCausalLM(lm_config)
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=layout.speech_end_id,
            pad_token_id=tokenizer.pad_token_id,
            **generation_defaults(settings),
        )
        model.save_pretrained(staging / MODEL_DIR)
        tokenizer.save_pretrained(staging / MODEL_DIR)
        validate_base(staging)
    return out_dir


def _safetensors_files(model_dir: Path, what: str) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        found = f"; found {', '.join(pickles)}" if pickles else ""
        raise LlasaBaseError(str(model_dir), f"{what} weights as .safetensors (only safetensors are accepted)",
                             f"none{found}")
    return files


def check_lm_weights(model_dir: Path, config: Any, *, finite: bool = True) -> None:
    """Check the LM's safetensors against its config: exact keys and shapes, and (optionally) finite values."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    # Resolve (and import) the model class before entering the meta device: modules imported inside
    # it would create their module-level tensors on the meta device.
    model_class = AutoModelForCausalLM._model_mapping[type(config)]
    model_class = model_class[0] if isinstance(model_class, (list, tuple)) else model_class
    with torch.device("meta"):
        skeleton = model_class(config)
    expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    found: dict[str, tuple[int, ...]] = {}
    for file in _safetensors_files(model_dir, "model folder"):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                found[key] = tuple(handle.get_slice(key).get_shape())
                if finite and not torch.isfinite(handle.get_tensor(key)).all():
                    raise LlasaBaseError(str(file), f"finite values in {key}", "NaN or inf")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise LlasaBaseError(str(model_dir), f"the weights of a {config.model_type} model",
                             f"unexpected weight(s) {', '.join(unexpected[:3])}")
    missing = sorted(set(expected) - set(found) - tied)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise LlasaBaseError(str(model_dir), f"the weights of a {config.model_type} model",
                             f"missing weight(s) {', '.join(missing[:3])}{more}")
    for key, shape in found.items():
        if shape != expected[key]:
            raise LlasaBaseError(str(model_dir), f"{key} of shape {list(expected[key])} (from config.json)",
                                 f"shape {list(shape)}")


def validate_model_dir(model_dir: Path, codec_dir: Path, *, weights: bool = True) -> BaseInfo:
    """Validate an LM folder (tokenizer + weights) against a codec folder; returns what it learned."""
    from transformers import AutoConfig, AutoTokenizer

    model_dir, codec_dir = Path(model_dir), Path(codec_dir)
    if not (model_dir / "config.json").is_file():
        raise LlasaBaseError(str(model_dir / "config.json"), "a model config", "missing")
    codec_config = read_codec_config(codec_dir)
    codes = codebook_size(codec_config)
    if not (model_dir / "tokenizer.json").is_file():
        raise LlasaBaseError(str(model_dir / "tokenizer.json"), "the Llasa tokenizer", "missing")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    source = str(model_dir / "tokenizer.json")
    layout = SpeechLayout.from_tokenizer(tokenizer, source=source)
    layout.check_codebook(codes, source=source, codec_source=str(codec_dir / "config.json"))
    config = AutoConfig.from_pretrained(model_dir)
    if config.vocab_size < len(tokenizer):
        raise LlasaBaseError(str(model_dir / "config.json"), f"vocab_size >= {len(tokenizer)} (the tokenizer's size)",
                             f"vocab_size {config.vocab_size}")
    if weights:
        check_lm_weights(model_dir, config)
    hop = int(math.prod(codec_config.get("downsampling_ratios", [2, 2, 4, 4, 5])))
    return BaseInfo(model_dir, codec_dir, layout, codes, hop, int(config.vocab_size))


def validate_base(base_dir: Path, *, weights: bool = True) -> BaseInfo:
    """Validate a base folder (``model/`` + ``codec/``); raise :class:`LlasaBaseError` naming what is wrong."""
    base_dir = Path(base_dir)
    for sub in (MODEL_DIR, CODEC_DIR):
        if not (base_dir / sub).is_dir():
            raise LlasaBaseError(str(base_dir / sub), f"the {sub}/ folder of a Llasa base", "missing")
    _safetensors_files(base_dir / CODEC_DIR, "codec folder")
    return validate_model_dir(base_dir / MODEL_DIR, base_dir / CODEC_DIR, weights=weights)


def base_summary(info: BaseInfo) -> dict[str, Any]:
    """A JSON-able description of a validated base (for listings and manifests)."""
    return {
        "codebook_size": info.codebook_size,
        "speech_offset": info.layout.speech_offset,
        "vocab_size": info.vocab_size,
        "hop_length": info.hop_length,
        "sample_rate": SAMPLE_RATE,
    }


def assemble_base(model_dir: Path, codec_dir: Path, out_dir: Path) -> Path:
    """Copy a published LM folder and an X-Codec-2.0 folder into one base folder, validated first.

    Only the files a base needs are copied (config, safetensors, tokenizer, codec files);
    pickled weights are never read.
    """
    model_dir, codec_dir, out_dir = Path(model_dir), Path(codec_dir), Path(out_dir)
    for folder, what in ((model_dir, "model"), (codec_dir, "codec")):
        if not folder.is_dir():
            raise TTSHostError(f"{what} folder {folder} does not exist or is not a folder")
    if (model_dir / "adapter_config.json").exists():
        raise LlasaBaseError(str(model_dir / "adapter_config.json"), "a full model folder (merge the adapter first)",
                             "a LoRA adapter folder")
    weights = _safetensors_files(model_dir, "model folder")
    if len(weights) != 1 or weights[0].name != "model.safetensors":
        raise LlasaBaseError(str(model_dir), "one model.safetensors file",
                             ", ".join(p.name for p in weights) + " (merge the shards into model.safetensors)")
    validate_model_dir(model_dir, codec_dir, weights=False)
    wanted = {
        MODEL_DIR: (model_dir, ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                                "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")),
        CODEC_DIR: (codec_dir, ("config.json", "model.safetensors", "preprocessor_config.json")),
    }
    out_dir.mkdir(parents=True, exist_ok=False)
    for sub, (source, names) in wanted.items():
        (out_dir / sub).mkdir()
        for name in names:
            if (source / name).is_file():
                shutil.copyfile(source / name, out_dir / sub / name)
    return out_dir
