"""One speech workflow for every backend: a request checked, a voice's model checked and built, a wav written.

Order of work: the text and the sampling options are checked (an option the backend does not
take is refused by name) -> the voice resolves and the component choice fits (the voice's own
choice from its fine-tune, then the request's) -> the library's cheap integrity check (the stat
cache; ``library verify --deep`` re-hashes) -> the model folder is materialised and the backend
checks the request against it (e.g. the language) -> the components are built through the host
-> the backend synthesises -> the wav is written whole or not at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tts_host.contract import SpeakRequest
from tts_host.errors import TTSHostError
from tts_host.speech import SpeechResult, check_sampling, check_text, write_wav

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.composition import Components
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model, Voice


def check_speak_request(backend: Backend, request: SpeakRequest) -> None:
    """Refuse empty text and sampling options the backend does not take or cannot use."""
    check_text(request.text)
    refused = sorted(set(request.sampling) - set(backend.sampling_options))
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise TTSHostError(f"backend '{backend.name}' does not take {flags}")
    check_sampling(dict(request.sampling), zero_means_off=backend.sampling_zero_means_off)
    if request.stream and not backend.streams:
        raise TTSHostError(f"backend '{backend.name}' does not stream: leave out --stream")
    if request.speed != 1.0 and not backend.speeds:
        raise TTSHostError(f"backend '{backend.name}' does not take --speed")


def voice_components(voice_model: Any, request_choice: dict[str, str]) -> dict[str, str]:
    """Components chosen for a voice: those its fine-tune chose, then the request's."""
    stored = (getattr(voice_model, "training_config", None) or {}).get("components", {})
    return {**dict(stored), **request_choice}


@dataclass(frozen=True)
class SpeechPlan:
    """A checked request: the voice, its model (integrity-checked), the component choice and the conditioning."""

    voice: Voice
    model: Model
    chosen: dict[str, str]
    conditioning: dict[str, np.ndarray]


def plan_speech(backend: Backend, library: Library, request: SpeakRequest) -> SpeechPlan:
    """Everything before models load: the request, the voice's backend and components, the cheap integrity check."""
    check_speak_request(backend, request)
    voice = library.voice(request.voice)
    if voice.backend != backend.name:
        raise TTSHostError(f"voice '{voice.name}' belongs to backend '{voice.backend}', not '{backend.name}'")
    chosen = voice_components(library.model_of(voice), dict(request.components))
    backend.host_or_error().choose_components(backend.name, chosen)
    model = library.ready_to_speak(voice)
    return SpeechPlan(voice, model, chosen, dict(library.voice_conditioning(voice)))


def built_components(backend: Backend, folder: Path, chosen: dict[str, str]) -> Components:
    """The components a backend speaks with, built from a materialised model folder."""
    components = backend.host_or_error().components_for(backend.name, folder, chosen, device=backend.speech_device())
    for role in backend.speech_roles:
        components[role]  # built now, not inside the timed synthesis
    return components


def speak(backend: Backend, library: Library, request: SpeakRequest) -> SpeechResult:
    """Synthesise ``request.text`` with a library voice into ``request.out``; see the module docstring."""
    plan = plan_speech(backend, library, request)
    with library.materialised(plan.model) as folder:
        backend.check_speech(folder, plan.voice, request)
        components = built_components(backend, folder, plan.chosen)
        started = time.perf_counter()
        speech = backend.synthesize(components, plan.conditioning, plan.voice, request)
        wall = time.perf_counter() - started
    out = write_wav(Path(request.out), speech.audio, speech.sample_rate)
    seconds = len(speech.audio) / speech.sample_rate
    return SpeechResult(out, speech.sample_rate, seconds, wall, speech.first_chunk_seconds)
