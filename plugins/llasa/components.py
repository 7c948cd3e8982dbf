"""The Llasa text encoder and acoustic model components (the codec and vocoder live in ``codec``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tts_host.plugins.llasa.layout import SpeechLayout
from tts_host.plugins.llasa.prompts import prompt_ids


class LlamaChatTextEncoder:
    """Text -> Llasa prompt ids through the Llama tokenizer and its chat template."""

    def __init__(self, path: str | Path, speaker: str | None = None) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(Path(path))
        self.layout = SpeechLayout.from_tokenizer(self.tokenizer, source=f"tokenizer {path}")
        self.vocab_size = len(self.tokenizer)
        self.speaker = speaker

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Prompt ids for ``text`` (ending with ``<|SPEECH_GENERATION_START|>``); ``language`` is unused."""
        return prompt_ids(self.tokenizer, self.layout, text, speaker=self.speaker)


class LlasaLanguageModel:
    """The acoustic model: a causal LM that continues a prompt with speech tokens."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from tts_host.plugins.llasa.base import quiet_transformers

        quiet_transformers()
        self.path = Path(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.layout = SpeechLayout.from_tokenizer(self.tokenizer, source=f"tokenizer {self.path}")
        self.model = AutoModelForCausalLM.from_pretrained(self.path, use_safetensors=True).to(device).eval()
        self.device = device

    def generate(self, text_tokens: Sequence[int], conditioning: Sequence[int] = (), **sampling: Any) -> np.ndarray:
        """Speech codes continuing ``text_tokens`` + the ``conditioning`` prefix codes (prefix not returned)."""
        from tts_host.plugins.llasa.generate import generate_codes

        return generate_codes(self.model, self.layout, list(text_tokens) + self.layout.token_ids(conditioning),
                              **sampling)
