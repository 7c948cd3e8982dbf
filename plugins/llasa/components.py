"""The Llasa text encoder and acoustic model components (the codec and vocoder live in ``codec``).

The host builds each as ``Class(model_folder=FOLDER, device=DEVICE)`` from a Llasa model folder
(``model/``, optional ``adapter/``, ``codec/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa import ADAPTER_DIR, MODEL_DIR
from tts_host.hf import quiet_transformers
from tts_host.plugins.llasa.layout import SpeechLayout
from tts_host.plugins.llasa.prompts import prompt_ids

if TYPE_CHECKING:
    from tts_host.plugins.llasa.generate import Sampling


class LlamaChatTextEncoder:
    """Text -> Llasa prompt ids through the Llama tokenizer and its chat template."""

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from transformers import AutoTokenizer

        quiet_transformers()
        path = Path(model_folder) / MODEL_DIR
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.layout = SpeechLayout.from_tokenizer(self.tokenizer, source=f"tokenizer {path}")
        self.vocab_size = len(self.tokenizer)

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Prompt ids for ``text`` (ending with ``<|SPEECH_GENERATION_START|>``); ``language`` is unused."""
        return self.prompt(text)

    def prompt(self, text: str, *, speaker: str | None = None, prefix_codes: Sequence[int] = ()) -> list[int]:
        """Prompt ids for ``text``, tagged with ``speaker``, the assistant turn starting with ``prefix_codes``."""
        return prompt_ids(self.tokenizer, self.layout, text, speaker=speaker, prefix_codes=list(prefix_codes))


class LlasaLanguageModel:
    """The acoustic model: a causal LM that continues a prompt with speech tokens.

    Building it reads only the tokenizer; the weights load when first used, merged with the
    folder's LoRA adapter for speech (:attr:`model`) or as a trainable model (:meth:`trainable`).
    """

    def __init__(self, model_folder: Path, device: str = "cpu") -> None:
        from transformers import AutoTokenizer

        quiet_transformers()
        self.folder = Path(model_folder)
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder / MODEL_DIR)
        self.layout = SpeechLayout.from_tokenizer(self.tokenizer, source=f"tokenizer {self.folder / MODEL_DIR}")
        self._model: Any = None
        self._int8: Any = None

    @property
    def adapter(self) -> Path | None:
        """The folder's LoRA adapter, if it has one."""
        adapter = self.folder / ADAPTER_DIR
        return adapter if (adapter / "adapter_config.json").is_file() else None

    @property
    def model(self) -> Any:
        """The LM for speech (a LoRA adapter merged in memory), on the component's device."""
        if self._model is None:
            from tts_host.plugins.llasa.lora import load_lm

            self._model = load_lm(self.folder / MODEL_DIR, self.adapter, merge=True).to(self.device).eval()
        return self._model

    def speech_model(self, precision: str | None = "fp32") -> Any:
        """:attr:`model`, or for ``int8`` an int8 copy of it, made once (:func:`tts_host.quantisation.int8_copy`;
        CPU only)."""
        if precision != "int8":
            return self.model
        if self._int8 is None:
            from tts_host.quantisation import int8_copy

            self._int8 = int8_copy(self.model)
        return self._int8

    def trainable(self, lora_rank: int | None, lora_alpha: int | None = None) -> Any:
        """The LM ready to train: full, a fresh LoRA of ``lora_rank``, or the folder's own adapter continued."""
        import json

        from tts_host.plugins.llasa.lora import load_lm, lora_config

        if lora_rank is None:
            if self.adapter is not None:
                raise TTSHostError(f"{self.folder} is a LoRA checkpoint: continue it with --lora, or fine-tune its "
                                   f"base (or a full checkpoint) for a full fine-tune")
            return load_lm(self.folder / MODEL_DIR)
        if self.adapter is not None:
            rank = json.loads((self.adapter / "adapter_config.json").read_text())["r"]
            if rank != lora_rank:
                raise TTSHostError(f"the starting checkpoint's LoRA adapter has rank {rank}; continue it with "
                                   f"--lora {rank} (got --lora {lora_rank})")
            return load_lm(self.folder / MODEL_DIR, self.adapter, trainable=True)
        from peft import get_peft_model

        return get_peft_model(load_lm(self.folder / MODEL_DIR), lora_config(lora_rank, lora_alpha))

    def generate(self, text_tokens: Sequence[int], conditioning: Sequence[int] = (), *,
                 sampling: Sampling | None = None, max_new_tokens: int | None = None,
                 precision: str | None = "fp32") -> np.ndarray:
        """Speech codes continuing the prompt ``text_tokens`` + the ``conditioning`` codes (not returned).

        ``sampling`` defaults to the model's generation config; at most ``max_new_tokens`` codes;
        ``precision`` ``int8`` samples from :meth:`speech_model`'s int8 copy.
        """
        from tts_host.plugins.llasa.generate import generate_codes

        prompt = list(text_tokens) + self.layout.token_ids(conditioning)
        return generate_codes(self.speech_model(precision), self.layout, prompt, sampling,
                              max_new_tokens=max_new_tokens)

    def stream(self, text_tokens: Sequence[int], conditioning: Sequence[int] = (), *, sampling: Sampling,
               max_new_tokens: int | None = None, chunk: int = 25,
               precision: str | None = "fp32") -> Iterator[np.ndarray]:
        """:meth:`generate`'s codes ``chunk`` at a time, as they are sampled."""
        from tts_host.plugins.llasa.generate import stream_codes

        prompt = list(text_tokens) + self.layout.token_ids(conditioning)
        return stream_codes(self.speech_model(precision), self.layout, prompt, sampling, max_new_tokens, chunk)
