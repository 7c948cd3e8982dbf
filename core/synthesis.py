"""One speech workflow for every backend: a request checked, a voice's model checked and built, a wav written.

Order of work: the text and the sampling options are checked (an option the backend does not
take is refused by name, and so is a precision it does not speak in) -> the voice resolves and the
component choice fits (the voice's own choice from its fine-tune, then the request's) -> the library's
cheap integrity check (the stat cache; ``library verify --deep`` re-hashes) -> the precision resolves
(the request's, else the voice's default, :mod:`tts_host.voice_settings`, else fp32) -> the model
folder is materialised and the backend checks the request against it (e.g. the language) -> the
components are built through the host -> the backend synthesises -> the wav is written whole or not
at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tts_host.contract import SPEECH_PRECISIONS, SpeakRequest
from tts_host.errors import TTSHostError
from tts_host.speech import SpeechResult, check_sampling, check_text, write_wav

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.composition import Components
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model, Voice


def check_speak_request(backend: Backend, request: SpeakRequest) -> None:
    """Refuse empty text, sampling options the backend does not take or cannot use, and a precision it lacks."""
    check_text(request.text)
    if request.precision is not None:
        check_backend_precision(backend, request.precision)
    refused = sorted(set(request.sampling) - set(backend.sampling_options))
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise TTSHostError(f"backend '{backend.name}' does not take {flags}")
    check_sampling(dict(request.sampling), zero_means_off=backend.sampling_zero_means_off)
    if request.stream and not backend.streams:
        raise TTSHostError(f"backend '{backend.name}' does not stream: leave out --stream")
    if request.speed != 1.0 and not backend.speeds:
        raise TTSHostError(f"backend '{backend.name}' does not take --speed")


def check_backend_precision(backend: Backend, precision: str) -> None:
    """Refuse a precision ``backend`` does not speak in (:attr:`~tts_host.backend.Backend.speech_precisions`)."""
    if precision not in backend.speech_precisions:
        spoken = ", ".join(p for p in SPEECH_PRECISIONS if p in backend.speech_precisions)
        raise TTSHostError(f"backend '{backend.name}' cannot speak in {precision} (it speaks in: {spoken})")


def voice_components(voice_model: Any, request_choice: dict[str, str]) -> dict[str, str]:
    """Components chosen for a voice: those its fine-tune chose, then the request's."""
    stored = (getattr(voice_model, "training_config", None) or {}).get("components", {})
    return {**dict(stored), **request_choice}


@dataclass(frozen=True)
class SpeechPlan:
    """A checked request: the voice, its model (integrity-checked), the component choice and the conditioning.

    ``request`` is the request with its precision resolved (never ``None``): what the backend is given.
    """

    voice: Voice
    model: Model
    chosen: dict[str, str]
    conditioning: dict[str, np.ndarray]
    request: SpeakRequest


def plan_speech(backend: Backend, library: Library, request: SpeakRequest) -> SpeechPlan:
    """Everything before models load: the request, the voice's backend and components, the cheap integrity check."""
    check_speak_request(backend, request)
    voice = library.voice(request.voice)
    if voice.backend != backend.name:
        raise TTSHostError(f"voice '{voice.name}' belongs to backend '{voice.backend}', not '{backend.name}'")
    chosen = voice_components(library.model_of(voice), dict(request.components))
    backend.host_or_error().choose_components(backend.name, chosen)
    model = library.ready_to_speak(voice)
    if request.precision is None:  # the voice's own (its files are checked by now), else fp32
        from tts_host.voice_settings import speech_precision

        request = replace(request, precision=speech_precision(library, voice) or "fp32")
        check_backend_precision(backend, request.precision)
    if request.precision == "int8" and backend.speech_device() != "cpu":  # torch's dynamic int8 is CPU-only
        raise TTSHostError(f"int8 speech runs on the CPU only and backend '{backend.name}' speaks on "
                           f"{backend.speech_device()}: use another --precision, or TTS_HOST_DEVICE=cpu")
    return SpeechPlan(voice, model, chosen, dict(library.voice_conditioning(voice)), request)


def built_components(backend: Backend, folder: Path, chosen: dict[str, str]) -> Components:
    """The components a backend speaks with, built from a materialised model folder."""
    components = backend.host_or_error().components_for(backend.name, folder, chosen, device=backend.speech_device())
    for role in backend.speech_roles:
        components[role]  # built now, not inside the timed synthesis
    return components


def speak(backend: Backend, library: Library, request: SpeakRequest) -> SpeechResult:
    """Synthesise ``request.text`` with a library voice into ``request.out``; see the module docstring."""
    plan = plan_speech(backend, library, request)
    request = plan.request
    with library.materialised(plan.model) as folder:
        backend.check_speech(folder, plan.voice, request)
        components = built_components(backend, folder, plan.chosen)
        started = time.perf_counter()
        speech = backend.synthesize(components, plan.conditioning, plan.voice, request)
        wall = time.perf_counter() - started
    out = write_wav(Path(request.out), speech.audio, speech.sample_rate)
    seconds = len(speech.audio) / speech.sample_rate
    return SpeechResult(out, speech.sample_rate, seconds, wall, speech.first_chunk_seconds)
