"""Speaker conditioning and speech synthesis with coqui's own XTTS inference code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.model import SAMPLE_RATE
from tts_host.plugins.xtts.text import check_request, text_chunks
from tts_host.speech import SpeechResult, audio_token_budget, check_references, join_speech, pause, write_wav


def conditioning_from_model(model: Any, references: list[Path]) -> dict[str, np.ndarray]:
    """``gpt_cond_latent``, ``speaker_embedding`` and ``cond_audio`` of reference clips, for a loaded Xtts."""
    import librosa
    import torch

    missing = [str(p) for p in references if not Path(p).is_file()]
    if missing:
        raise TTSHostError(f"reference clip {missing[0]} does not exist")
    if not references:
        raise TTSHostError("no reference clips given: pass at least one --ref")
    config = model.config
    audios = [torch.from_numpy(librosa.load(str(p), sr=SAMPLE_RATE, mono=True)[0][: SAMPLE_RATE * config.max_ref_len])
              .reshape(1, -1) for p in references]
    with torch.inference_mode():
        embeddings = [model.get_speaker_embedding(audio, SAMPLE_RATE) for audio in audios]
        cond_audio = torch.cat(audios, dim=-1)[:, : SAMPLE_RATE * config.gpt_cond_len]
        latent = latent_from_audio(model, cond_audio.numpy()[0])
    return {
        "gpt_cond_latent": latent,
        "speaker_embedding": torch.stack(embeddings).mean(dim=0).numpy(),
        "cond_audio": cond_audio.numpy()[0].astype(np.float32),
    }


def latent_from_audio(model: Any, cond_audio: np.ndarray) -> np.ndarray:
    """The GPT conditioning latent of 22.05 kHz audio with this model's (possibly fine-tuned) GPT."""
    import torch

    audio = torch.from_numpy(np.asarray(cond_audio, dtype=np.float32)).reshape(1, -1)
    if audio.shape[-1] < SAMPLE_RATE // 3:
        raise TTSHostError("reference audio too short: at least 0.33 s of speech is needed")
    config = model.config
    with torch.inference_mode():
        latent = model.get_gpt_cond_latents(audio, SAMPLE_RATE, length=config.gpt_cond_len,
                                            chunk_length=config.gpt_cond_chunk_len)
    return latent.numpy()


def compute_conditioning(model_folder: Path, references: list[Path]) -> dict[str, np.ndarray]:
    """Zero-shot clone: conditioning of ``references`` with the model in ``model_folder``.

    Every clip is checked (decodes, finite, not silent, long enough) before the model loads.
    """
    from tts_host.plugins.xtts.model import load_xtts

    check_references(references)
    return conditioning_from_model(load_xtts(model_folder), references)


def synthesize(model: Any, text: str, conditioning: Mapping[str, np.ndarray], *, language: str = "en",
               stream: bool = False, seed: int = 0, bf16: bool = False, max_new_tokens: int | None = None,
               on_chunk: Any = None, sampling: Mapping[str, Any] | None = None) -> tuple[np.ndarray, float | None]:
    """24 kHz float32 audio of ``text``; with ``stream``, also seconds to the first chunk.

    The text is spoken a sentence at a time (:func:`tts_host.speech.split_text`, within coqui's
    char limit and the GPT's text-token limit), the sentences joined with a short pause. For
    each, the GPT samples at most as many audio tokens as it can need (:mod:`tts_host.speech`),
    and never more than ``max_new_tokens`` when it is given. ``on_chunk`` gets every streamed
    piece of audio, pauses included.
    """
    import contextlib

    import torch

    from tts_host.plugins.xtts.model import quiet_transformers

    check_request(text, language, model.config.languages, sampling or {})
    latent = torch.from_numpy(np.asarray(conditioning["gpt_cond_latent"], dtype=np.float32))
    speaker = torch.from_numpy(np.asarray(conditioning["speaker_embedding"], dtype=np.float32))
    settings: dict[str, Any] = {"temperature": model.config.temperature, "top_k": model.config.top_k,
                                "top_p": model.config.top_p, "repetition_penalty": model.config.repetition_penalty,
                                "length_penalty": model.config.length_penalty}
    settings.update(sampling or {})
    ceiling = model.gpt.max_gen_mel_tokens if max_new_tokens is None else max_new_tokens
    rate = int(model.config.model_args.output_sample_rate)
    torch.manual_seed(seed)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    started = time.perf_counter()
    first = None
    pieces: list[np.ndarray] = []
    with autocast, torch.inference_mode(), quiet_transformers():
        for index, chunk in enumerate(text_chunks(model, text, language)):
            settings["max_new_tokens"] = audio_token_budget(chunk, SAMPLE_RATE / model.gpt.code_stride_len, ceiling)
            if stream:
                if index and on_chunk is not None:
                    on_chunk(pause(rate))
                parts = []
                for part in model.inference_stream(chunk, language, latent, speaker, **settings):
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(part.float().cpu().numpy().reshape(-1))
                    if on_chunk is not None:
                        on_chunk(parts[-1])
                pieces.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
            elif bf16:
                pieces.append(_inference_bf16(model, chunk, language, latent, speaker, settings))
            else:
                wav = model.inference(chunk, language, latent, speaker, **settings)["wav"]
                pieces.append(np.asarray(wav, dtype=np.float32).reshape(-1))
    return join_speech(pieces, rate), first


def _inference_bf16(model: Any, text: str, language: str, latent: Any, speaker: Any,
                    settings: dict[str, Any]) -> np.ndarray:
    """coqui's inference steps with the GPT under bf16 autocast and HiFi-GAN in fp32.

    coqui's ``Xtts.inference`` cannot run whole under autocast (it converts the bf16 waveform
    to numpy); this runs its GPT generation and latent pass in bf16 and decodes in fp32.
    """
    import torch

    tokens = torch.IntTensor(model.tokenizer.encode(text.strip().lower(), lang=language.split("-")[0])).unsqueeze(0)
    codes = model.gpt.generate(cond_latents=latent, text_inputs=tokens, do_sample=True, num_return_sequences=1,
                               num_beams=1, output_attentions=False, **settings)
    latents = model.gpt(tokens, torch.tensor([tokens.shape[-1]]), codes,
                        torch.tensor([codes.shape[-1] * model.gpt.code_stride_len]), cond_latents=latent,
                        return_attentions=False, return_latent=True)
    with torch.autocast("cpu", enabled=False):
        wav = model.hifigan_decoder(latents.float(), g=speaker)
    return wav.float().reshape(-1).numpy().astype(np.float32)


def voice_conditioning(library: Any, voice: Any, model_folder: Path) -> dict[str, np.ndarray]:
    """A voice's conditioning: stored with the voice, else its entry in the checkpoint's speakers file."""
    from tts_host.plugins.xtts.speakers_file import FILE, read_speakers

    stored = library.voice_conditioning(voice)
    if stored:
        return stored
    entry = read_speakers(model_folder / FILE).get(voice.name)
    if entry is None:
        raise TTSHostError(f"voice '{voice.name}' has no conditioning: clone it again with `tts-host voices add`")
    return entry


def speak_voice(library: Any, voice_name: str, text: str, out: Path, *, language: str | None = None,
                stream: bool = False, seed: int = 0, bf16: bool = False,
                sampling: Mapping[str, Any] | None = None) -> SpeechResult:
    """Check the request and the voice's files (the library's cheap check), synthesise ``text``, write a 24 kHz wav.

    The text, the language (and its text frontend) and the sampling options are checked before
    anything is checked or loaded.
    """
    import tempfile

    from tts_host.plugins.xtts.model import load_xtts

    voice = library.voice(voice_name)
    if voice.backend != "xtts":
        raise TTSHostError(f"voice '{voice_name}' belongs to backend '{voice.backend}', not 'xtts'")
    language = language or voice.language or "en"
    languages = _listed_languages(library, voice)  # None: unreadable, and the library check below says so
    check_request(text, language, languages if languages is not None else [language], sampling or {})
    with tempfile.TemporaryDirectory(prefix="tts-host-speak-") as tmp:
        folder = Path(tmp) / "model"
        library.materialise(library.ready_to_speak(voice), folder)
        model = load_xtts(folder)
        conditioning = voice_conditioning(library, voice, folder)
    started = time.perf_counter()
    audio, first = synthesize(model, text, conditioning, language=language, stream=stream, seed=seed, bf16=bf16,
                              sampling=sampling)
    wall = time.perf_counter() - started
    rate = int(model.config.model_args.output_sample_rate)
    write_wav(out, audio, rate)
    return SpeechResult(Path(out), rate, len(audio) / rate, wall, first)


def _listed_languages(library: Any, voice: Any) -> list[str] | None:
    """The languages in the config.json of the voice's model, read from the library without loading it.

    ``None`` when the file cannot be read: the library's validation then names the problem.
    """
    import json

    entry = next((f for f in library.model_of(voice).files if f.role == "config"), None)
    if entry is None:
        return None
    try:
        return list(json.loads(library.blob_path(entry.sha256).read_text(encoding="utf-8"))["languages"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
