"""XTTS speech and cloning through the backend's components.

Speech: the text encoder cuts the text into sentences and tokenises them -> the acoustic model
(the GPT) samples audio codes and their latents, at most as many as the sentence can need ->
the vocoder turns latents + the voice's d-vector into 24 kHz audio. Streaming vocodes the
latents as the GPT samples them, each window with a little context before and after, and
cross-fades the joins, so the work grows with the audio, not with its square.

Cloning: the speaker encoder gives the d-vector (16 kHz audio), the acoustic model the GPT
conditioning latent (22.05 kHz audio), both from the reference clips.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from tts_host.contract import SpeakRequest, Speech
from tts_host.errors import TTSHostError
from tts_host.plugins.xtts import SAMPLE_RATE, SPEAKER_SAMPLE_RATE
from tts_host.speech import audio_token_budget, join_speech, pause
from tts_host.speech_precision import decoding_autocast, sampling_autocast
from tts_host.streaming import stream_audio

if TYPE_CHECKING:
    from tts_host.composition import Components

STREAM_CHUNK_TOKENS = 20  # codes per streamed piece (coqui's default stream_chunk_size)


def read_reference(path: Path, sample_rate: int, seconds: float | None = None) -> np.ndarray:
    """A reference clip as mono float32 at ``sample_rate`` (at most ``seconds`` long)."""
    from tts_host.data.audio import read_audio

    audio = read_audio(Path(path), sample_rate)
    return audio[: int(sample_rate * seconds)] if seconds else audio


def clone_conditioning(components: Components, references: list[Path]) -> dict[str, np.ndarray]:
    """``gpt_cond_latent``, ``speaker_embedding`` and ``cond_audio`` of reference clips (coqui's recipe).

    The d-vector is the mean of each clip's, resampled to 16 kHz; the latent comes from the
    clips joined, up to ``gpt_cond_len`` seconds. ``cond_audio`` is kept so that a later
    fine-tune can recompute the latent with its own GPT.
    """
    from tts_host.plugins.xtts.acoustic import GptAcousticModel

    acoustic = components.get("acoustic_model", GptAcousticModel)
    encoder = components["speaker_encoder"]
    config = acoustic.config
    clips = [read_reference(p, SAMPLE_RATE, config["max_ref_len"]) for p in references]
    import torch
    import torchaudio

    vectors = [encoder.embed(torchaudio.functional.resample(torch.from_numpy(c), SAMPLE_RATE, SPEAKER_SAMPLE_RATE)
                             .numpy()) for c in clips]
    cond_audio = np.concatenate(clips)[: SAMPLE_RATE * int(config["gpt_cond_len"])].astype(np.float32)
    return {
        "gpt_cond_latent": acoustic.conditioning_latent(cond_audio),
        "speaker_embedding": np.mean(vectors, axis=0).reshape(1, -1, 1).astype(np.float32),
        "cond_audio": cond_audio,
    }


def voice_conditioning(stored: Mapping[str, np.ndarray], voice: Any, folder: Path) -> Mapping[str, np.ndarray]:
    """A voice's conditioning: stored with the voice, else its entry in the checkpoint's speakers file."""
    from tts_host.plugins.xtts.speakers_file import FILE, read_speakers

    if stored:
        return stored
    entry = read_speakers(Path(folder) / FILE).get(voice.name)
    if entry is None:
        raise TTSHostError(f"voice '{voice.name}' has no conditioning: clone it again with `tts-host voices add`")
    return entry


def sampling_settings(config: Mapping[str, Any], request: SpeakRequest) -> dict[str, Any]:
    """Generation options: the model's config.json values, then the request's."""
    settings = {name: config[name] for name in ("temperature", "top_k", "top_p", "repetition_penalty",
                                                  "length_penalty") if name in config}
    settings.update(request.sampling)
    return settings


def synthesize(components: Components, conditioning: Mapping[str, np.ndarray], language: str,
               request: SpeakRequest) -> Speech:
    """Speech for ``request.text``: a sentence at a time, joined with short pauses.

    ``request.precision`` (:mod:`tts_host.speech_precision`): ``bf16`` autocasts the GPT's sampling and the
    vocoder; ``int8`` samples from an int8 copy of the GPT (CPU only; :meth:`GptAcousticModel.inference_gpt`)
    and vocodes in bf16 on CPUs that compute it natively, else in fp32.
    """
    import torch

    from tts_host.plugins.xtts.acoustic import GptAcousticModel
    from tts_host.plugins.xtts.components import BpeTextEncoder

    text_encoder = components.get("text_encoder", BpeTextEncoder)
    acoustic = components.get("acoustic_model", GptAcousticModel)
    vocoder = components["vocoder"]
    speaker = np.asarray(conditioning["speaker_embedding"], dtype=np.float32)
    settings = sampling_settings(acoustic.config, request)
    autocast = sampling_autocast(request.precision, acoustic.device.type)
    decoding = decoding_autocast(request.precision, acoustic.device.type)

    def vocode(latents: np.ndarray) -> np.ndarray:
        with decoding:
            return vocoder.vocode({"latents": latents, "speaker_embedding": speaker})

    rate = int(vocoder.sample_rate)
    torch.manual_seed(request.seed)
    started, first = time.perf_counter(), None
    pieces: list[np.ndarray] = []
    for index, sentence in enumerate(text_encoder.sentences(request.text, language)):
        tokens = text_encoder.encode(sentence, language.split("-")[0])
        budget = audio_token_budget(sentence, acoustic.codes_per_second, acoustic.max_audio_tokens)
        options = {**settings, "max_new_tokens": budget, "precision": request.precision}
        if not request.stream:
            with autocast:
                latents = acoustic.generate(tokens, conditioning, **options)["latents"]
            pieces.append(vocode(latents))
            continue
        if index and request.on_chunk is not None:
            request.on_chunk(pause(rate))
        parts = []
        for part in stream_audio(acoustic.stream(tokens, conditioning, chunk_tokens=STREAM_CHUNK_TOKENS, **options),
                                 vocode, latent_position(acoustic.config), autocast):
            if first is None:
                first = time.perf_counter() - started
            parts.append(part)
            if request.on_chunk is not None:
                request.on_chunk(part)
        pieces.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
    return Speech(join_speech(pieces, rate), rate, first)


def latent_position(config: Mapping[str, Any]) -> Callable[[int], int]:
    """Where the decoder's audio for latent ``n`` starts, in samples of its output.

    The decoder resamples latents to its own frame grid (one frame per ``output_hop_length``
    samples) and makes audio frame by frame, so a window that starts at latent ``n`` starts at
    the frame nearest to ``n`` latents.
    """
    args = config["model_args"]
    frames_per_latent = (args["gpt_code_stride_len"] / args["output_hop_length"]
                         * args["output_sample_rate"] / args["input_sample_rate"])
    hop = int(args["output_hop_length"])
    return lambda latent: round(latent * frames_per_latent) * hop
