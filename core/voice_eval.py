"""``tts-host eval``: how a voice sounds, measured: speaker similarity of its speech to its own recordings
(Resemblyzer's pretrained encoder), its real-time factor, and its held-out loss from its fine-tune.

The speech comes from core's speech workflow on a fixed set of held-out sentences (never training text),
with the voice's own model, or with another checkpoint of the same base (``--before``): so a sequential
fine-tune's effect on an earlier voice is measured in sound, not only in loss.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tts_host.contract import SpeakRequest
from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.host import PluginHost
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Voice
    from tts_host.synthesis import SpeechPlan

SENTENCES = {
    "en": ["Every morning the baker opens the shop before sunrise.",
           "Please remember to water the plants while I am away.",
           "The train to the coast leaves from the second platform."],
    "zh": ["每天早上面包师在日出之前开门。", "我不在的时候请记得给花浇水。"],
}
"""Held-out sentences: none is in the demo's or the tests' training text."""
MAX_RECORDINGS = 8


@dataclass(frozen=True)
class VoiceScore:
    """One voice on one model: similarity to its recordings (-1..1), real-time factor, held-out loss."""

    voice: str
    model: str
    similarity: float
    real_time_factor: float
    heldout_loss: float | None
    sentences: int
    recordings: int

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict."""
        return asdict(self)


def own_recordings(library: Library, voice: Voice) -> list[Path]:
    """The voice's own speech: its stored reference clips, then its training clips that still exist."""
    from tts_host.speakers.records import Checkpoint

    paths = [library.blob_path(f.sha256) for f in library.files_of(voice) if f.role.startswith("reference:")]
    model = library.model_of(voice)
    if isinstance(model, Checkpoint):
        for clip in (model.training_config or {}).get("clips", {}).get(voice.name, []):
            path = Path(str(clip.get("audio_path", "")))
            if path.is_file():
                paths.append(path)
    return paths[:MAX_RECORDINGS]


@dataclass(frozen=True)
class _Judging:
    """What scoring a voice needs, whichever model speaks: its backend, checked plan, sentences, recordings."""

    backend: Backend
    plan: SpeechPlan
    texts: list[str]
    own: np.ndarray
    recordings: int


def _judging(library: Library, host: PluginHost, name: str, similarity: SpeakerSimilarity, seed: int) -> _Judging:
    from tts_host.synthesis import plan_speech

    voice = library.voice(name)
    recordings = own_recordings(library, voice)
    if not recordings:
        raise TTSHostError(f"voice '{name}' has no recordings of its own to compare with (no reference clips, "
                           "and its training clips are gone)")
    own = similarity.embed_files(recordings)
    backend = host.build_backend(voice.backend)
    language = (voice.language or "en").split("-")[0].lower()
    texts = SENTENCES.get(language)
    if texts is None:
        raise TTSHostError(f"tts-host eval has held-out sentences in {', '.join(SENTENCES)}, not '{voice.language}'")
    plan = plan_speech(backend, library, SpeakRequest(name, texts[0], Path("-"), seed=seed))
    return _Judging(backend, plan, texts, own, len(recordings))


def _score(judging: _Judging, folder: Path, label: str, heldout: float | None, similarity: SpeakerSimilarity,
           seed: int) -> VoiceScore:
    """Speak the held-out sentences with the model in ``folder`` (named ``label``) and score the speech."""
    from tts_host.synthesis import built_components

    backend, plan = judging.backend, judging.plan
    components = built_components(backend, folder, plan.chosen)
    scores, spoken, wall = [], 0.0, 0.0
    for text in judging.texts:
        request = SpeakRequest(plan.voice.name, text, Path("-"), seed=seed, precision=plan.request.precision)
        backend.check_speech(folder, plan.voice, request)
        started = time.perf_counter()
        speech = backend.synthesize(components, plan.conditioning, plan.voice, request)
        wall += time.perf_counter() - started
        spoken += len(speech.audio) / speech.sample_rate
        scores.append(similarity.similarity(similarity.embed(speech.audio, speech.sample_rate), judging.own))
    return VoiceScore(plan.voice.name, label, float(np.mean(scores)), wall / max(spoken, 1e-9), heldout,
                      len(judging.texts), judging.recordings)


def evaluate(library: Library, host: PluginHost, name: str, similarity: SpeakerSimilarity,
             model_label: str | None = None, seed: int = 0) -> VoiceScore:
    """Score voice ``name`` on its own model, or on ``model_label`` (a checkpoint of the same base)."""
    judging = _judging(library, host, name, similarity, seed)
    model = judging.plan.model
    if model_label is not None:
        model = library.resolve(model_label)
        if model.backend != judging.backend.name or _base_id(model) != _base_id(judging.plan.model):
            raise TTSHostError(f"{model.label} is not a model of voice '{name}''s base ({judging.backend.name})")
    heldout = (getattr(model, "metrics", None) or {}).get("heldout", {}).get(name, {}).get("after")
    with library.materialised(model) as folder:
        return _score(judging, folder, model.label, heldout, similarity, seed)


def evaluate_in_folder(library: Library, host: PluginHost, name: str, similarity: SpeakerSimilarity, folder: Path,
                       label: str, seed: int = 0) -> VoiceScore:
    """Score voice ``name`` on the model in ``folder`` (one not stored yet, e.g. a fine-tune's result)."""
    return _score(_judging(library, host, name, similarity, seed), Path(folder), label, None, similarity, seed)


def _base_id(model: object) -> int:
    from tts_host.speakers.records import Checkpoint

    return model.base_id if isinstance(model, Checkpoint) else model.id  # type: ignore[attr-defined]


def plot(scores: list[VoiceScore], before: list[VoiceScore], path: Path) -> Path:
    """A bar chart of similarity per voice (and per model with ``--before``), written to ``path``."""
    from tts_host.charts import png_chart

    names = [s.voice for s in scores]
    x = np.arange(len(names))
    width = 0.38 if before else 0.6
    with png_chart(path, (max(4, 1.2 * len(names) + 2), 3.5)) as axes:
        if before:
            axes.bar(x - width / 2, [b.similarity for b in before], width, label=f"on {before[0].model}")
        axes.bar(x + (width / 2 if before else 0), [s.similarity for s in scores], width, label="on its own model")
        axes.set_xticks(x, names)
        axes.set_ylabel("similarity to own recordings")
        axes.set_ylim(min(0.0, *(s.similarity for s in scores + before)), 1.0)
        axes.legend(loc="lower right")
    return Path(path)
