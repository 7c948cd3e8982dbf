"""Real speech from espeak-ng, offline: several voices stand for several speakers.

The demo, the benchmarks and the tests use it to make multi-speaker recordings with
transcripts on any machine that has the ``espeak-ng`` binary (Debian package ``espeak-ng``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tts_host.errors import TTSHostError

# Speaker label -> espeak-ng voice. Distinct voices give distinct, real speakers.
VOICES: dict[str, str] = {"A": "en-us", "B": "en+f3", "C": "en+m7", "D": "en-gb"}

SENTENCES: list[str] = [
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


def espeak_available() -> bool:
    """Whether the espeak-ng binary is on PATH."""
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: str, path: Path, *, speed: int = 160) -> Path:
    """Speak ``text`` with espeak-ng ``voice`` into a 22.05 kHz mono 16-bit wav at ``path``."""
    if not espeak_available():
        raise TTSHostError("espeak-ng is not installed: install it (`apt-get install espeak-ng`)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def speak_folder(voice: str, folder: Path, sentences: list[str], *, speed: int = 160) -> Path:
    """One wav per sentence with a same-named ``.txt`` transcript (the plain-folder dataset format).

    Clips already present are kept, so a second call costs nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(sentences):
        wav = folder / f"{index:03d}.wav"
        if not wav.exists():
            synthesize(text, voice, wav, speed=speed)
            wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return folder


def long_recording(voice: str, path: Path, sentences: list[str], pause_s: float = 0.8) -> Path:
    """Join several spoken sentences into one recording with silent pauses between them."""
    import numpy as np
    import soundfile as sf

    parts = []
    rate = 22050
    for index, sentence in enumerate(sentences):
        clip = synthesize(sentence, voice, path.parent / f".{path.stem}_{index}.wav")
        audio, rate = sf.read(clip, dtype="float32")
        clip.unlink()
        parts += [audio, np.zeros(int(pause_s * rate), dtype=np.float32)]
    sf.write(path, np.concatenate(parts), rate, subtype="PCM_16")
    return path
