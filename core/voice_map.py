"""``tts-host voices map``: the library's voices placed by their speaker embeddings, so a user sees which are
close. Each voice's embedding is Resemblyzer's d-vector of its own recordings (one encoder for every
backend, so voices of different backends share one map); the map is their first two principal components."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.speakers.library import Library


@dataclass(frozen=True)
class VoicePoint:
    """A voice on the map."""

    voice: str
    backend: str
    x: float
    y: float


def voice_points(library: Library, similarity: SpeakerSimilarity) -> list[VoicePoint]:
    """Every voice with recordings of its own, placed by the first two principal components of their d-vectors."""
    from tts_host.voice_eval import own_recordings

    named, vectors = [], []
    for voice in library.voices():
        recordings = own_recordings(library, voice)
        if recordings:
            named.append(voice)
            vectors.append(similarity.embed_files(recordings))
    if not named:
        raise TTSHostError("no voice has recordings of its own to place on a map")
    matrix = np.asarray(vectors) - np.mean(vectors, axis=0)
    if len(named) == 1:
        coords = np.zeros((1, 2))
    else:
        _, _, axes = np.linalg.svd(matrix, full_matrices=False)
        coords = matrix @ axes[:2].T
        if coords.shape[1] == 1:
            coords = np.hstack([coords, np.zeros_like(coords)])
    return [VoicePoint(v.name, v.backend, float(x), float(y)) for v, (x, y) in zip(named, coords)]


def plot_map(points: list[VoicePoint], path: Path) -> Path:
    """The map as a PNG: one labelled dot per voice, coloured by backend."""
    from matplotlib import colormaps

    from tts_host.charts import png_chart

    backends = sorted({p.backend for p in points})
    colours = colormaps["tab10"]
    with png_chart(path, (6, 5)) as axes:
        for index, backend in enumerate(backends):
            mine = [p for p in points if p.backend == backend]
            axes.scatter([p.x for p in mine], [p.y for p in mine], color=colours(index), label=backend, s=60)
            for p in mine:
                axes.annotate(p.voice, (p.x, p.y), textcoords="offset points", xytext=(6, 4))
        axes.set_xlabel("first principal component")
        axes.set_ylabel("second principal component")
        axes.set_title("voices by speaker embedding (Resemblyzer d-vectors)")
        axes.legend(title="backend")
    return Path(path)
