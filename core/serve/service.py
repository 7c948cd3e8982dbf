"""Synthesis for a server: models loaded once and kept (least recently used first out), a bounded
queue in front of a fixed number of synthesis workers, and requests that stop when their client goes.

Every request runs core's speech workflow (:func:`tts_host.synthesis.plan_speech`, then the backend's
``synthesize``) in a worker thread with that thread's own library connection. A model's components
are built from a folder materialised once, and one request at a time speaks with them; LoRA voices on
one base share it, each request switching in its voice's adapter.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from tts_host.contract import SpeakRequest, Speech
from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.composition import Components
    from tts_host.host import PluginHost
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Model
    from tts_host.synthesis import SpeechPlan


class Busy(TTSHostError):
    """Every worker is busy and the queue is full."""


class Cancelled(TTSHostError):
    """The client went away: the synthesis stopped."""


ADAPTERS_PER_MODEL = 32
"""LoRA adapters kept loaded on one base (the least recently used dropped first)."""


@dataclass
class LoadedModel:
    """A materialised model folder and the components built from it; ``lock`` lets one request speak at a time.

    For LoRA voices the folder holds the base alone and ``adapters`` (adapter name -> its
    materialised files, least recently used first) the voices' adapters loaded on it.
    """

    folder: Path
    components: Components
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: OrderedDict[str, Path] = field(default_factory=OrderedDict)

    def speak_through(self, library: Library, backend: Backend, model: Model) -> None:
        """Make the acoustic model speak through ``model``'s adapter, or its base alone (hold ``lock``)."""
        from tts_host.interfaces import AdapterSwitching

        adapter = backend.adapter_of(model)
        acoustic = self.components["acoustic_model"]
        if not isinstance(acoustic, AdapterSwitching):
            if adapter:
                raise TTSHostError(f"backend '{backend.name}' declares LoRA adapter files but its acoustic model "
                                   f"cannot switch adapters (tts_host.interfaces.AdapterSwitching)")
            return
        if not adapter:
            acoustic.use_adapter(None)
            return
        name = hashlib.sha256("".join(sorted(f.sha256 for f in model.files if f.role in adapter)).encode()).hexdigest()
        name = f"adapter-{name[:16]}"
        if name not in self.adapters:
            folder = self.folder.parent / name
            shutil.rmtree(folder, ignore_errors=True)
            library.materialise(model, folder, roles=set(adapter))
            self.adapters[name] = folder
            while len(self.adapters) > ADAPTERS_PER_MODEL:
                dropped, dropped_folder = self.adapters.popitem(last=False)
                acoustic.drop_adapter(dropped)
                shutil.rmtree(dropped_folder, ignore_errors=True)
        self.adapters.move_to_end(name)
        acoustic.use_adapter(name, self.adapters[name])


class LoadedModels:
    """At most ``capacity`` loaded models, the least recently used evicted first.

    Models that differ only in their LoRA adapter (:attr:`tts_host.backend.Backend.adapter_roles`)
    are one loaded model: the base is built once and each voice's adapter switched in per request.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._root = Path(tempfile.mkdtemp(prefix="tts-host-serve-"))

    def get(self, library: Library, backend: Backend, plan: SpeechPlan) -> LoadedModel:
        """The loaded model of ``plan``'s base (materialised and built on first use); see the class docstring."""
        from tts_host.synthesis import built_components

        shared = [f for f in plan.model.files if f.role not in backend.adapter_roles]
        key = (backend.name, tuple(sorted((f.role, f.sha256) for f in shared)), tuple(sorted(plan.chosen.items())))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            folder = Path(tempfile.mkdtemp(dir=self._root))
            library.materialise(plan.model, folder / "model", roles={f.role for f in shared})
            loaded = LoadedModel(folder / "model", built_components(backend, folder / "model", plan.chosen))
            self._models[key] = loaded
            while len(self._models) > self.capacity:
                _, evicted = self._models.popitem(last=False)
                shutil.rmtree(evicted.folder.parent, ignore_errors=True)
            return loaded

    def __len__(self) -> int:
        return len(self._models)

    def close(self) -> None:
        """Drop every model and its folder."""
        with self._lock:
            self._models.clear()
            shutil.rmtree(self._root, ignore_errors=True)


class SpeechService:
    """The voice library's synthesis for concurrent requests (see the module docstring)."""

    def __init__(self, home: Path, host: PluginHost, *, workers: int = 2, queue: int = 8, models: int = 2) -> None:
        if workers < 1 or queue < 0:
            raise TTSHostError("--workers must be at least 1 and --queue at least 0")
        self.home, self.host = Path(home), host
        self.workers, self.queue = workers, queue
        self.models = LoadedModels(models)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="tts-host-speech")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._local = threading.local()
        self._backends: dict[str, Backend] = {}
        self.stopped = 0
        """Requests whose synthesis stopped because their client went away."""

    def library(self) -> Library:
        """This thread's library connection (SQLite connections stay in their thread)."""
        from tts_host.speakers.library import Library

        if getattr(self._local, "library", None) is None:
            self._local.library = Library(self.home, host=self.host)
        return self._local.library

    def backend(self, name: str) -> Backend:
        """The backend ``name``, built once."""
        if name not in self._backends:
            self._backends[name] = self.host.build_backend(name)
        return self._backends[name]

    def voices(self) -> list[dict[str, object]]:
        """Every library voice: name, backend, language, and its consent on record (statement, source, recording)."""
        from tts_host.consent import consent_of

        library = self.library()
        listed = []
        for voice in library.voices():
            consent = consent_of(library, voice)
            listed.append({"name": voice.name, "backend": voice.backend, "language": voice.language,
                           "consent": None if consent is None else {"statement": consent["statement"],
                                                                     "source": consent["source"],
                                                                     "recording": bool(consent["recording"])}})
        return listed

    def submit(self, request: SpeakRequest, cancelled: threading.Event,
               on_chunk: Callable[[np.ndarray, int], None] | None = None) -> Future[Speech]:
        """Queue ``request``; :class:`Busy` at once when the workers and the queue are full."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"all {self.workers} synthesis workers are busy and {self.queue} requests wait: retry later")
        try:
            future = self._executor.submit(self._speak, request, cancelled, on_chunk)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def _speak(self, request: SpeakRequest, cancelled: threading.Event,
               on_chunk: Callable[[np.ndarray, int], None] | None) -> Speech:
        from tts_host.synthesis import plan_speech

        if cancelled.is_set():
            raise Cancelled("the client went away before synthesis started")
        library = self.library()
        backend = self.backend(library.voice(request.voice).backend)
        plan = plan_speech(backend, library, request)
        request = plan.request  # its precision resolved (the voice's default when the request names none)
        loaded = self.models.get(library, backend, plan)
        rate: list[int] = []

        def chunk(audio: np.ndarray) -> None:
            if cancelled.is_set():
                self.stopped += 1
                raise Cancelled("the client went away: synthesis stopped")
            if on_chunk is not None:
                on_chunk(audio, rate[0] if rate else 0)

        with loaded.lock:
            loaded.speak_through(library, backend, plan.model)
            backend.check_speech(loaded.folder, plan.voice, request)
            rate.append(_output_rate(loaded.components))
            streaming = backend.streams
            speech = backend.synthesize(loaded.components, plan.conditioning, plan.voice,
                                        replace(request, stream=streaming, on_chunk=chunk if streaming else None))
        if cancelled.is_set():
            raise Cancelled("the client went away: synthesis stopped")
        if not streaming and on_chunk is not None:
            on_chunk(speech.audio, speech.sample_rate)
        return speech

    def close(self) -> None:
        """Stop taking requests, finish the running ones, drop the models."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.models.close()


def _output_rate(components: Components) -> int:
    """The rate of the audio the backend's vocoder makes (its chunks carry no rate of their own)."""
    return int(components["vocoder"].sample_rate)
