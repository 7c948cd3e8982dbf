"""Speech from a Llasa model folder: prompt, KV-cached sampling, codec decoding, reference cut."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.base import CODEC_DIR, MODEL_DIR, quiet_transformers
from tts_host.plugins.llasa.generate import Sampling, generate_codes
from tts_host.plugins.llasa.layout import SpeechLayout
from tts_host.plugins.llasa.prompts import prompt_ids
from tts_host.speech import audio_token_budget, check_text, join_speech, split_text

ADAPTER_DIR = "adapter"
MAX_SENTENCE_CHARS = 250  # longer sentences are cut at clauses, then words (as for XTTS in English)


@dataclass
class LoadedModel:
    """A model folder ready to speak: tokenizer, layout, LM (LoRA merged in memory) and codec."""

    tokenizer: Any
    layout: SpeechLayout
    model: Any
    codec: Any


def load_model(folder: Path, device: str = "cpu") -> LoadedModel:
    """Load ``folder`` (``model/``, optional ``adapter/``, ``codec/``) for inference."""
    from transformers import AutoTokenizer

    from tts_host.plugins.llasa.codec import XcodecCodec
    from tts_host.plugins.llasa.lora import load_lm

    quiet_transformers()
    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder / MODEL_DIR)
    layout = SpeechLayout.from_tokenizer(tokenizer, source=str(folder / MODEL_DIR / "tokenizer.json"))
    adapter = folder / ADAPTER_DIR
    model = load_lm(folder / MODEL_DIR, adapter if (adapter / "adapter_config.json").is_file() else None, merge=True)
    return LoadedModel(tokenizer, layout, model.to(device).eval(), XcodecCodec(folder / CODEC_DIR, device=device))


def synthesize(loaded: LoadedModel, text: str, *, speaker: str | None = None, ref_codes: Sequence[int] = (),
               ref_text: str | None = None, sampling: Sampling | None = None) -> np.ndarray:
    """16 kHz mono float32 speech for ``text``, spoken a sentence at a time with short pauses between.

    With ``ref_codes`` (zero-shot cloning) the user turn holds the reference transcript and
    the text, the reference codes start the assistant turn, and the reference part is cut from
    the decoded audio. Otherwise ``speaker`` tags the prompt for a fine-tuned voice. For each
    sentence (:func:`tts_host.speech.split_text`) the LM samples at most as many speech tokens
    as it can need (:mod:`tts_host.speech`).
    """
    check_text(text)
    if len(ref_codes) > 0 and not (ref_text and ref_text.strip()):
        raise TTSHostError("cloning needs the reference clip's transcript (--ref-text)")
    sampling = sampling or Sampling.from_generation_config(loaded.model.generation_config)
    pieces = []
    for chunk in split_text(text, MAX_SENTENCE_CHARS):
        pieces.append(_sentence(loaded, chunk, speaker, ref_codes, ref_text, sampling))
        sampling = replace(sampling, seed=None)  # seeded once: later sentences continue the random stream
    return join_speech(pieces, loaded.codec.sample_rate)


def _sentence(loaded: LoadedModel, text: str, speaker: str | None, ref_codes: Sequence[int], ref_text: str | None,
              sampling: Sampling) -> np.ndarray:
    """The speech of one sentence (see :func:`synthesize`)."""
    cloning = len(ref_codes) > 0
    prompt_text = f"{ref_text.strip()} {text}" if cloning else text
    prompt = prompt_ids(loaded.tokenizer, loaded.layout, prompt_text, speaker=None if cloning else speaker,
                        prefix_codes=list(ref_codes))
    budget = audio_token_budget(text, loaded.codec.sample_rate / loaded.codec.hop_length, sampling.max_length)
    codes = generate_codes(loaded.model, loaded.layout, prompt, sampling, max_new_tokens=budget)
    if codes.size == 0:
        raise TTSHostError("the model ended the speech before producing any speech token "
                           "(an untrained or overfitted model; try another --seed or a higher temperature)")
    if not cloning:
        return loaded.codec.decode(codes)
    audio = loaded.codec.decode(np.concatenate([np.asarray(ref_codes, dtype=np.int64), codes]))
    return audio[len(ref_codes) * loaded.codec.hop_length:]
