"""The ``llasa`` backend: bases, validation, fine-tuning, cloning, synthesis and HF export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from tts_host.backend import Backend, FileRole
from tts_host.contract import SAMPLING_OPTIONS, CloneRequest, SpeakRequest, Speech
from tts_host.errors import TTSHostError, ValidationError
from tts_host.plugins.llasa import ADAPTER_DIR, SAMPLE_RATE

if TYPE_CHECKING:
    from tts_host.speakers.records import Voice
    from tts_host.composition import Components
    from tts_host.training.job import TrainingJob, TrainingRun

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
    training_sample_rate = SAMPLE_RATE
    settings_class = "tts_host.plugins.llasa.train:FinetuneSettings"
    sampling_options = frozenset(SAMPLING_OPTIONS)
    sampling_zero_means_off = True
    streams = True
    speech_precisions = frozenset({"fp32", "int8"})
    speech_roles = ("text_encoder", "acoustic_model", "vocoder")
    adapter_roles = ("adapter_config", "adapter_weights")

    def init_base(self, preset: str, out_dir: Path, *, seed: int = 0) -> Path:
        """A base folder (``model/`` + ``codec/``) with random weights and a locally built tokenizer."""
        from tts_host.plugins.llasa.base import init_base

        return init_base(preset, Path(out_dir), seed=seed)

    def assemble_base(self, model_dir: Path, parts: Mapping[str, Path], out_dir: Path) -> Path:
        """Lay out a published LM folder and its ``codec`` folder as one base folder (``base add llasa PATH --codec``)."""
        from tts_host.plugins.llasa.base import assemble_base

        if set(parts) != {"codec"}:
            raise TTSHostError("a llasa base is assembled from the LM folder and one --codec folder")
        return assemble_base(Path(model_dir), Path(parts["codec"]), Path(out_dir))

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
        if (folder / ADAPTER_DIR).exists():
            from tts_host.lora import validate_adapter

            validate_adapter(folder / ADAPTER_DIR)

    def training_run(self, job: TrainingJob) -> TrainingRun:
        """Train the LM of ``job``'s components (full or LoRA) on speaker-tagged rows."""
        from tts_host.plugins.llasa.recipe import LlasaTrainingRun

        return LlasaTrainingRun(job)

    def check_speech(self, folder: Path, voice: Voice, request: SpeakRequest) -> None:
        """Refuse what Llasa speech cannot use: a language (its tokenizer reads any text)."""
        if request.language:
            raise TTSHostError("backend 'llasa' does not take --language: its tokenizer reads the text as written")

    def synthesize(self, components: Components, conditioning: Mapping[str, np.ndarray], voice: Voice,
                   request: SpeakRequest) -> Speech:
        """Text encoder -> LM -> X-Codec-2.0 decoder, a sentence at a time."""
        from tts_host.plugins.llasa.synthesis import synthesize

        return synthesize(components, conditioning, request)

    def conditioning(self, components: Components, request: CloneRequest) -> dict[str, np.ndarray]:
        """Zero-shot clone: the reference clips' speech codes (codec component) and their transcript."""
        from tts_host.plugins.llasa.clone import reference_conditioning

        return reference_conditioning(components["codec"], [Path(p) for p in request.references], request.ref_text)

    def export_formats(self) -> list[str]:
        """``hf``: a Hugging Face folder (LoRA merged) for plain AutoModelForCausalLM + AutoTokenizer."""
        return ["hf"]

    def export(self, voice: Voice, model_folder: Path, conditioning: Mapping[str, np.ndarray],
               fmt: str, out: Path) -> Path:
        """Write the HF folder: merged LM + tokenizer, the codec beside it in ``codec/``."""
        if fmt != "hf":
            return super().export(voice, model_folder, conditioning, fmt, out)
        from tts_host.plugins.llasa.export import export_hf

        return export_hf(Path(model_folder), Path(out), conditioning=conditioning,
                         voice_name=getattr(voice, "name", None))

