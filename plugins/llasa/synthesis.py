"""Llasa speech through the backend's components: prompt, KV-cached sampling, decoding, reference cut.

The text encoder builds the chat prompt (tagged with a fine-tuned voice's speaker name), the
acoustic model (the LM) samples speech codes, the vocoder (the X-Codec-2.0 decoder) turns them
into 16 kHz audio. A cloned voice's reference codes start the assistant turn and its transcript
precedes the text; the reference part is cut from the decoded audio.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from tts_host.contract import SpeakRequest, Speech
from tts_host.errors import TTSHostError
from tts_host.plugins.llasa import HOP_LENGTH, SAMPLE_RATE
from tts_host.conditioning import array_text
from tts_host.speech import audio_token_budget, join_speech, pause, split_text

if TYPE_CHECKING:
    from tts_host.composition import Components
    from tts_host.interfaces import Vocoder

MAX_SENTENCE_CHARS = 250  # longer sentences are cut at clauses, then words (as for XTTS in English)
STREAM_CHUNK_CODES = 25  # codes (half a second) per streamed window
NO_SPEECH = ("the model ended the speech before producing any speech token "
             "(an untrained or overfitted model; try another --seed or a higher temperature)")


def synthesize(components: Components, conditioning: Mapping[str, np.ndarray], request: SpeakRequest) -> Speech:
    """16 kHz speech for ``request.text``, a sentence at a time with short pauses between.

    For each sentence (:func:`tts_host.speech.split_text`) the LM samples at most as many speech
    tokens as it can need (:mod:`tts_host.speech`). ``request.precision`` ``int8`` samples from an int8 copy of
    the LM (CPU only); the codec's decoder stays fp32 (bf16 made it slower: docs/backends/llasa.md).
    """
    from tts_host.plugins.llasa.generate import Sampling

    from tts_host.plugins.llasa.components import LlamaChatTextEncoder, LlasaLanguageModel

    text_encoder = components.get("text_encoder", LlamaChatTextEncoder)
    acoustic = components.get("acoustic_model", LlasaLanguageModel)
    vocoder = components["vocoder"]
    speaker = array_text(conditioning["speaker_tag"]) if "speaker_tag" in conditioning else None
    ref_codes = np.asarray(conditioning.get("ref_codes", np.zeros(0, np.int64)), dtype=np.int64).tolist()
    ref_text = array_text(conditioning["ref_text"]) if "ref_text" in conditioning else None
    if ref_codes and not (ref_text and ref_text.strip()):
        raise TTSHostError("cloning needs the reference clip's transcript (--ref-text)")
    sampling = Sampling.from_generation_config(acoustic.model.generation_config, seed=request.seed,
                                               **dict(request.sampling))
    pieces = []
    started, first = time.perf_counter(), None
    for index, sentence in enumerate(split_text(request.text, MAX_SENTENCE_CHARS)):
        cloning = bool(ref_codes)
        prompt = text_encoder.prompt(f"{ref_text.strip()} {sentence}" if cloning else sentence,
                                     speaker=None if cloning else speaker)
        budget = audio_token_budget(sentence, SAMPLE_RATE / HOP_LENGTH, sampling.max_length)
        if request.stream:
            if index and request.on_chunk is not None:
                request.on_chunk(pause(vocoder.sample_rate))
            parts = []
            for part in _streamed(vocoder, acoustic.stream(prompt, ref_codes, sampling=sampling, max_new_tokens=budget,
                                                          chunk=STREAM_CHUNK_CODES, precision=request.precision),
                                  ref_codes):
                first = first if first is not None else time.perf_counter() - started
                parts.append(part)
                if request.on_chunk is not None:
                    request.on_chunk(part)
            if not parts:
                raise TTSHostError(NO_SPEECH)
            pieces.append(np.concatenate(parts))
        else:
            codes = acoustic.generate(prompt, ref_codes, sampling=sampling, max_new_tokens=budget,
                                      precision=request.precision)
            pieces.append(_decode(vocoder, codes, ref_codes))
        sampling = replace(sampling, seed=None)  # seeded once: later sentences continue the random stream
    return Speech(join_speech(pieces, vocoder.sample_rate), vocoder.sample_rate, first)


def _streamed(vocoder: Vocoder, chunks: Iterator[np.ndarray], ref_codes: Sequence[int]) -> Iterator[np.ndarray]:
    """Audio of streamed codes, decoded in windows after the reference's codes (whose audio is cut)."""
    from tts_host.streaming import stream_audio

    frames = (c.reshape(1, -1) for c in itertools.chain([np.asarray(ref_codes, dtype=np.int64)], chunks) if c.size)
    skip = len(ref_codes) * HOP_LENGTH  # the reference's own audio
    for piece in stream_audio(frames, lambda window: vocoder.vocode(window[0]), lambda n: n * HOP_LENGTH):
        cut = min(skip, len(piece))
        skip -= cut
        if len(piece) > cut:
            yield piece[cut:]


def _decode(vocoder: Vocoder, codes: np.ndarray, ref_codes: Sequence[int]) -> np.ndarray:
    """Audio of ``codes``; decoded after the reference codes (then cut) when cloning."""
    if codes.size == 0:
        raise TTSHostError(NO_SPEECH)
    if not ref_codes:
        return vocoder.vocode(codes)
    audio = vocoder.vocode(np.concatenate([np.asarray(ref_codes, dtype=np.int64), codes]))
    return audio[len(ref_codes) * vocoder.sample_rate * HOP_LENGTH // SAMPLE_RATE:]

