"""``tts-host demo``: the main job end to end on embedded speech, in a few minutes on a CPU.

Two espeak-ng voices read the embedded sentences (tts_host.data.espeak); a tiny XTTS base is initialised; speaker A is
fine-tuned, then B on top of A (replaying some of A); each voice speaks a sentence; the
library is verified. Everything lives under the demo's work folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

from tts_host.data.espeak import SENTENCES, VOICES, espeak_available, speak_folder
from tts_host.errors import TTSHostError

SPEAKERS = ("A", "B")
DEMO_SETTINGS = {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "settings": {"seed": 1}}
TEST_SENTENCE = "Hello, this voice was fine-tuned by the demo."


def run_demo(workdir: Path, *, progress: bool = True) -> Iterator[str]:
    """Run the demo in ``workdir`` (a fresh library each time); yields the lines to print."""
    from tts_host.bases import init_base
    from tts_host.contract import FinetuneRequest, SpeakRequest
    from tts_host.host import get_host
    from tts_host.speakers.library import Library

    workdir = Path(workdir).resolve()
    home = workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    if not espeak_available():
        raise TTSHostError("the demo needs espeak-ng for its speech: install it (`apt-get install espeak-ng`)")
    data = {name: speak_folder(VOICES[name], workdir / "speech" / name, SENTENCES) for name in SPEAKERS}
    voices = ", ".join(VOICES[name] for name in SPEAKERS)
    yield f"speech: {len(SENTENCES)} sentences each from espeak-ng voices {voices} in {workdir / 'speech'}"
    host = get_host()
    with Library(home, host=host) as library:
        backend = library.backend("xtts")
        base = init_base(library, backend, "tiny", "xtts-tiny", seed=0)
        yield f"base: {base.label}, tiny XTTS with random weights (it speaks noise until trained)"
        first = backend.finetune(library, FinetuneRequest("A", data["A"], base=base.name, progress=progress,
                                                          log_dir=workdir / "logs" / "A", **DEMO_SETTINGS))
        yield from first.summary_lines()
        second = backend.finetune(library, FinetuneRequest("B", data["B"], start="A", replay=0.2, progress=progress,
                                                           log_dir=workdir / "logs" / "B", **DEMO_SETTINGS))
        yield from second.summary_lines()
        yield from (f"warning: {w}" for w in second.warnings)
        for name in SPEAKERS:
            result = backend.speak(library, SpeakRequest(name, TEST_SENTENCE, workdir / "out" / f"{name}.wav"))
            yield from result.summary_lines()
        problems = library.verify(deep=True)
        if problems:
            raise TTSHostError("library verification failed: " + "; ".join(p.line() for p in problems))
        counts = f"{len(library.voices())} voices, {len(library.checkpoints())} checkpoints"
        yield f"library verified: {counts}, all blobs intact"
    yield f"library home: {home} (use it with TTS_HOST_HOME={home})"
    yield f"done in {time.perf_counter() - started:.0f} s"
