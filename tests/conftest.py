"""Shared fixtures: an isolated library home per test and cached espeak-ng speech."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: each computes on one thread (and so do the processes it starts),
    # instead of every worker's torch and BLAS spreading over every core and contending for them.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from tts_host.data.espeak import SENTENCES, VOICES, espeak_available, synthesize


@pytest.fixture(autouse=True)
def tts_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty ``$TTS_HOST_HOME``."""
    home = tmp_path / "tts-home"
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def speaker_clips(tmp_path_factory: pytest.TempPathFactory):
    """``speaker_clips("A", n)`` -> list of (wav path, transcript) for speaker A, cached per session.

    Each clip lies next to a same-named ``.txt`` transcript (the plain-folder dataset format),
    in a folder that holds exactly those ``count`` clips, so a test may use the folder itself.
    """
    if not espeak_available():
        pytest.fail("espeak-ng is not installed: `apt-get install espeak-ng` (CI installs it in .ci/run)")
    root = tmp_path_factory.mktemp("speech")

    def make(speaker: str, count: int = 8) -> list[tuple[Path, str]]:
        folder = root / f"{speaker}-{count}"
        clips = []
        for index, text in enumerate(SENTENCES[:count]):
            wav = folder / f"{speaker}_{index:03d}.wav"
            if not wav.exists():
                synthesize(text, VOICES[speaker], wav)
                wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
            clips.append((wav, text))
        return clips

    return make
