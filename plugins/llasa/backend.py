"""The ``llasa`` backend: bases, validation, fine-tuning, cloning, synthesis and HF export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tts_host.backend import Backend, FileRole
from tts_host.errors import ValidationError

FILE_ROLES = [
    FileRole("lm_config", "model/config.json", description="causal LM config (LlamaForCausalLM by default)"),
    FileRole("lm_weights", "model/model.safetensors", description="causal LM weights"),
    FileRole("generation_config", "model/generation_config.json", required=False,
             description="sampling defaults and <|SPEECH_GENERATION_END|> as end of sequence"),
    FileRole("tokenizer", "model/tokenizer.json", protected=True,
             description="Llama tokenizer with the 8 Llasa markers and one <|s_N|> per codec code"),
    FileRole("tokenizer_config", "model/tokenizer_config.json", protected=True, description="tokenizer settings"),
    FileRole("special_tokens_map", "model/special_tokens_map.json", required=False, protected=True,
             description="special tokens (published folders)"),
    FileRole("chat_template", "model/chat_template.jinja", required=False, protected=True,
             description="the chat template (when not inside tokenizer_config.json)"),
    FileRole("adapter_config", "adapter/adapter_config.json", required=False,
             description="LoRA adapter config (peft) of a LoRA fine-tune"),
    FileRole("adapter_weights", "adapter/adapter_model.safetensors", required=False,
             description="LoRA adapter weights (peft), applied on top of model/"),
    FileRole("codec_config", "codec/config.json", protected=True, description="X-Codec-2.0 config"),
    FileRole("codec_weights", "codec/model.safetensors", protected=True, description="X-Codec-2.0 weights"),
    FileRole("codec_preprocessor", "codec/preprocessor_config.json", required=False, protected=True,
             description="X-Codec-2.0 feature extractor settings"),
]

ARCHITECTURE_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size")


class LlasaBackend(Backend):
    """Llasa: a causal LM over X-Codec-2.0 speech tokens (full or LoRA fine-tunes, cloning, HF export)."""

    name = "llasa"

    def presets(self) -> list[str]:
        """Preset names in ``configs/llasa``: small, tiny."""
        from tts_host.plugins.llasa.presets import preset_names

        return preset_names()

    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """A base folder (``model/`` + ``codec/``) with random weights and a locally built tokenizer."""
        from tts_host.plugins.llasa.base import init_base

        return init_base(preset, Path(out_dir), seed=seed)

    def assemble_base(self, model_dir: Path, codec_dir: Path, out_dir: Path) -> Path:
        """Lay out a published LM folder and codec folder as one base folder (``base add llasa PATH --codec``)."""
        from tts_host.plugins.llasa.base import assemble_base

        return assemble_base(Path(model_dir), Path(codec_dir), Path(out_dir))

    def file_roles(self) -> list[FileRole]:
        """LM config/weights, the protected tokenizer and codec files, optional LoRA adapter files."""
        return list(FILE_ROLES)

    def architecture(self, folder: Path) -> dict[str, Any]:
        """The LM's shape-determining config fields and the speech-token layout."""
        from tts_host.plugins.llasa.base import base_summary, validate_base

        info = validate_base(Path(folder), weights=False)
        config = json.loads((Path(folder) / "model" / "config.json").read_text(encoding="utf-8"))
        return {**{key: config.get(key) for key in ARCHITECTURE_KEYS}, **base_summary(info)}

    def validate(self, folder: Path, architecture: Mapping[str, Any]) -> None:
        """Tokenizer layout vs codec, exact LM keys and shapes, finite values, adapter, config vs the base."""
        from tts_host.plugins.llasa.base import validate_base

        folder = Path(folder)
        validate_base(folder)
        if architecture:
            actual = self.architecture(folder)
            for key, expected in architecture.items():
                if actual.get(key) != expected:
                    raise ValidationError("model/config.json" if key in ARCHITECTURE_KEYS else "model/tokenizer.json",
                                          f"{key} {expected} (as the base)", f"{key} {actual.get(key)}")
        if (folder / "adapter").exists():
            from tts_host.plugins.llasa.lora import validate_adapter

            validate_adapter(folder / "adapter")

    def finetune(self, library: Any, *, speaker: str, data: Path, start: str | None = None,
                 base: str | None = None, config: Path | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, replay: float | None = None,
                 resume: bool = False, restart: bool = False, allow_empty_text: bool = False,
                 log_dir: Path | None = None, progress: bool = True, on_step: Any = None, lora: int | None = None,
                 **settings: Any):
        """Fine-tune for ``speaker`` on ``data`` from ``start`` (voice or record) or ``base``; ``lora`` = rank.

        Returns a :class:`~tts_host.plugins.llasa.service.FinetuneOutcome` (``summary_lines()``,
        ``warnings``, the stored checkpoint and voice). Extra keyword settings are
        :class:`~tts_host.plugins.llasa.train.FinetuneSettings` fields. ``restart`` discards an
        interrupted run's saved progress (refused otherwise unless ``resume``);
        ``allow_empty_text`` trains on clips without a transcript.
        """
        from tts_host.plugins.llasa.service import run_finetune
        from tts_host.plugins.llasa.train import FinetuneSettings

        options = FinetuneSettings.load(config, epochs=epochs, batch_size=batch_size, learning_rate=lr,
                                        lora_rank=lora, **settings)
        return run_finetune(self, library, speaker=speaker, data=Path(data), start=start, base=base,
                            settings=options, replay=replay or 0.0, resume=resume, restart=restart,
                            allow_empty_text=allow_empty_text, progress=progress, log_dir=log_dir, on_step=on_step)

    def speak(self, library: Any, *, voice: str, text: str, out: Path, language: str | None = None,
              stream: bool = False, seed: int = 0, **sampling: Any):
        """Synthesise ``text`` with ``voice`` into a 16 kHz wav; sampling: temperature, top_p, top_k,
        repetition_penalty, max_length (defaults: the model's generation config).

        The text is spoken a sentence at a time; ``language`` is not used (the tokenizer takes any
        text). Text and sampling options are checked before the model loads."""
        from tts_host.plugins.llasa.service import speak_voice

        return speak_voice(library, voice, text, Path(out), stream=stream, seed=seed, **sampling)

    def conditioning(self, model_folder: Path, references: Sequence[Path]) -> dict[str, np.ndarray]:
        """Zero-shot clone: the reference clip's speech codes (and transcript) for the assistant prefix.

        Every clip is checked (decodes, finite, not silent, long enough) before the codec loads.
        """
        from tts_host.plugins.llasa.clone import reference_conditioning

        return reference_conditioning(Path(model_folder), [Path(p) for p in references],
                                      self.options.get("ref_text"))

    def export_formats(self) -> list[str]:
        """``hf``: a Hugging Face folder (LoRA merged) for plain AutoModelForCausalLM + AutoTokenizer."""
        return ["hf"]

    def export(self, voice: Any, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write the HF folder: merged LM + tokenizer, the codec beside it in ``codec/``."""
        if fmt != "hf":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from tts_host.plugins.llasa.export import export_hf

        return export_hf(Path(model_folder), Path(out), conditioning=conditioning,
                         voice_name=getattr(voice, "name", None))

