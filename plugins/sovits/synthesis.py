"""SoVITS speech through the backend's components, a sentence at a time.

Per sentence: the text encoder gives the reference transcript's and the sentence's phonemes; s1
(the acoustic model) continues the reference's semantic codes over both; s2 (the vocoder) decodes
only the new codes with the sentence's phonemes and the voice vector the speaker encoder takes from
the reference's spectrogram. Streaming hands each sentence's audio on as soon as it is made.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Mapping

import numpy as np
import torch

from tts_host.contract import SpeakRequest, Speech
from tts_host.errors import TTSHostError
from tts_host.plugins.sovits import SAMPLE_RATE
from tts_host.plugins.sovits.components import (
    PhonemeTextEncoder,
    ReferenceSpeakerEncoder,
    SemanticCodec,
    SemanticPrompt,
    SovitsFeatures,
    SovitsVocoder,
    TextToSemanticModel,
)
from tts_host.plugins.sovits.reference import reference_of
from tts_host.speech import audio_token_budget, join_speech, pause

if TYPE_CHECKING:
    from tts_host.composition import Components

CODES_PER_SECOND = 25


def synthesize(components: Components, conditioning: Mapping[str, np.ndarray], request: SpeakRequest) -> Speech:
    """32 kHz speech for ``request.text`` with a voice's stored reference (see the module docstring)."""
    text = components.get("text_encoder", PhonemeTextEncoder)
    acoustic = components.get("acoustic_model", TextToSemanticModel)
    codec = components.get("codec", SemanticCodec)
    vocoder = components.get("vocoder", SovitsVocoder)
    speaker = components.get("speaker_encoder", ReferenceSpeakerEncoder)
    ref_audio, ref_codes, ref_text, ref_language = reference_of(conditioning)
    language = request.language or ref_language
    sampling = {**acoustic.defaults, **dict(request.sampling)}
    ceiling = int(sampling.pop("max_length", 1500))
    device = next(speaker.model.parameters()).device
    with torch.no_grad():
        voice = speaker.model(speaker.spectrogram(ref_audio).to(device))
    reference = text.phonemes(ref_text, ref_language)
    prompt = torch.from_numpy(ref_codes).unsqueeze(0)
    generator = torch.Generator().manual_seed(request.seed)
    torch.manual_seed(request.seed)
    started = time.perf_counter()
    first: float | None = None
    pieces = []
    for sentence in text.sentences(request.text, language):
        target = text.phonemes(sentence, language)
        ids = torch.tensor([reference.ids + target.ids])
        bert = torch.cat([text.bert_features(reference, acoustic.model.bert_dim),
                          text.bert_features(target, acoustic.model.bert_dim)], dim=1).unsqueeze(0)
        budget = audio_token_budget(sentence, CODES_PER_SECOND, ceiling)
        codes = acoustic.generate(ids, SemanticPrompt(prompt, bert), top_k=int(sampling.get("top_k", 15)),
                                  top_p=float(sampling.get("top_p", 1.0)),
                                  temperature=float(sampling.get("temperature", 1.0)),
                                  repetition_penalty=float(sampling.get("repetition_penalty", 1.35)),
                                  max_tokens=budget, generator=generator)
        if codes.numel() == 0:
            raise TTSHostError("s1 ended the speech before producing any semantic token "
                               "(an untrained model; try another --seed)")
        latents = codec.vectors(codes)
        audio = vocoder.vocode(SovitsFeatures(latents, torch.tensor([target.ids]), voice, 0.5, request.speed))
        if request.stream and request.on_chunk is not None:
            if pieces:
                request.on_chunk(pause(SAMPLE_RATE))
            request.on_chunk(audio)
        if first is None:
            first = time.perf_counter() - started
        pieces.append(audio)
    return Speech(join_speech(pieces, SAMPLE_RATE), SAMPLE_RATE, first if request.stream else None)
