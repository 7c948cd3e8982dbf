"""``tts-host demo``: the main job end to end on embedded speech, in a few minutes on a CPU.

Two espeak-ng voices read the sentences below; a tiny XTTS base is initialised; speaker A is
fine-tuned, then B on top of A (replaying some of A); each voice speaks a sentence; the
library is verified. Everything lives under the demo's work folder.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

from tts_host.errors import TTSHostError

VOICES = {"A": "en-us", "B": "en+f3"}
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.",
    "Please call Stella and ask her to bring these things.",
    "The rainbow is a division of white light into many beautiful colors.",
    "We will meet at the station at half past seven.",
    "Bright sunshine warmed the quiet garden all afternoon.",
    "Every morning the baker opens the shop before dawn.",
    "The old clock in the hall struck twelve times.",
    "Music fills the room when the windows are open.",
    "Their small boat drifted slowly toward the harbour.",
    "A cup of tea is the best way to start the day.",
    "The children laughed as the kite rose into the sky.",
    "Rain tapped gently against the glass all night long.",
    "He wrote a long letter to his friend in the city.",
    "The library closes early on Sunday evenings.",
    "Green hills rolled away toward the distant mountains.",
    "She found an old map hidden inside the book.",
    "The train was late because of the heavy snow.",
    "Fresh bread and warm soup were waiting on the table.",
    "Birds sang loudly in the tall trees near the river.",
    "The teacher asked everyone to read the first chapter.",
    "A gentle breeze carried the scent of flowers.",
    "They painted the fence a bright shade of blue.",
]
DEMO_SETTINGS = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "seed": 1}
TEST_SENTENCE = "Hello, this voice was fine-tuned by the demo."


def speak_sentences(voice: str, folder: Path, sentences: list[str]) -> Path:
    """espeak-ng recordings with same-named .txt transcripts (the plain-folder dataset format)."""
    if shutil.which("espeak-ng") is None:
        raise TTSHostError("the demo needs espeak-ng for its speech: install it (`apt-get install espeak-ng`)")
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(sentences):
        wav = folder / f"{index:03d}.wav"
        if not wav.exists():
            subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(wav), text], check=True,
                           capture_output=True)
            wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return folder


def run_demo(workdir: Path, *, progress: bool = True) -> Iterator[str]:
    """Run the demo in ``workdir`` (a fresh library each time); yields the lines to print."""
    from tts_host.speakers.library import Library

    workdir = Path(workdir).resolve()
    home = workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    data = {name: speak_sentences(voice, workdir / "speech" / name, SENTENCES) for name, voice in VOICES.items()}
    voices = ", ".join(VOICES.values())
    yield f"speech: {len(SENTENCES)} sentences each from espeak-ng voices {voices} in {workdir / 'speech'}"
    with Library(home) as library:
        backend = library.backend("xtts")
        base = library.init_base(backend, "tiny", "xtts-tiny", seed=0)
        yield f"base: {base.label}, tiny XTTS with random weights (it speaks noise until trained)"
        first = backend.finetune(library, speaker="A", data=data["A"], base=base.name, progress=progress,
                                 log_dir=workdir / "logs" / "A", **DEMO_SETTINGS)
        yield from first.summary_lines()
        second = backend.finetune(library, speaker="B", data=data["B"], start="A", replay=0.2, progress=progress,
                                  log_dir=workdir / "logs" / "B", **DEMO_SETTINGS)
        yield from second.summary_lines()
        yield from (f"warning: {w}" for w in second.warnings)
        for name in VOICES:
            result = backend.speak(library, voice=name, text=TEST_SENTENCE, out=workdir / "out" / f"{name}.wav")
            yield from result.summary_lines()
        problems = library.verify(deep=True)
        if problems:
            raise TTSHostError("library verification failed: " + "; ".join(p.line() for p in problems))
        counts = f"{len(library.voices())} voices, {len(library.checkpoints())} checkpoints"
        yield f"library verified: {counts}, all blobs intact"
    yield f"library home: {home} (use it with TTS_HOST_HOME={home})"
    yield f"done in {time.perf_counter() - started:.0f} s"
