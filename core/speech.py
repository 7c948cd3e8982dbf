"""What every backend's speech shares: checks made before a model loads, how a text is cut into
sentences, how much audio each may become, and how the pieces are joined.

An autoregressive model stops when it samples its end token. A barely trained or unlucky
model may never sample it, and would then generate to its context limit: minutes of noise
for a three-word request, and (with coqui's streaming) minutes of wall time. Every backend
therefore bounds the audio tokens it samples by the text's length.

Long texts are spoken a sentence at a time (as coqui's ``tts`` does): every model has a limit
on its text tokens, and a paragraph passes it. Sentences longer than a backend's limit are cut
at clause boundaries, then between words; the spoken pieces are joined with a short pause.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tts_host.errors import TTSHostError

# Slow, careful speech runs at about 10 characters a second in alphabetic scripts (English at
# 140 words a minute) and about 4 a second in Chinese or Japanese; 0.15 s per character and
# 0.3 s per wide (CJK) character leave half as much again, and the fixed allowance covers a
# short word said slowly with its pauses.
SECONDS_PER_CHARACTER = 0.15
SECONDS_PER_WIDE_CHARACTER = 0.3
FIXED_SECONDS = 2.0
PAUSE_SECONDS = 0.3  # silence between the sentences of a text

# A sentence ends at . ! ? … (or their CJK, Devanagari and Arabic forms) and any closing quotes
# or brackets; Latin-script sentences also need the whitespace after them.
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’)\]]*(?=\s)|[。！？．।؟]+[\"'”’」』)\]]*)\s*")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[–—-]|[，、；：])\s*")
# Abbreviations a sentence does not end after ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "fig"}

# Sampling option -> (test of its value, what the value must be).
_SAMPLING_RULES = {
    "temperature": (lambda v: v > 0, "greater than 0"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "top_k": (lambda v: v >= 1, "at least 1"),
    "repetition_penalty": (lambda v: v > 0, "greater than 0"),
    "max_length": (lambda v: v >= 1, "at least 1"),
}
# Where a backend gives 0 a meaning of its own: temperature 0 = greedy, top-k 0 = no top-k.
_ZERO_MEANS_OFF = {"temperature": (lambda v: v >= 0, "at least 0 (0 means greedy)"),
                   "top_k": (lambda v: v >= 0, "at least 0 (0 means no top-k)")}

MIN_REFERENCE_SECONDS = 0.5
SILENT_PEAK = 1e-3  # a reference whose loudest sample is below this (-60 dBFS) holds no speech


def speech_seconds_limit(text: str) -> float:
    """The longest speech ``text`` can reasonably need, in seconds."""
    spoken = " ".join(text.split())
    wide = sum(1 for char in spoken if unicodedata.east_asian_width(char) in ("W", "F"))
    return FIXED_SECONDS + SECONDS_PER_CHARACTER * (len(spoken) - wide) + SECONDS_PER_WIDE_CHARACTER * wide


def audio_token_budget(text: str, tokens_per_second: float, ceiling: int) -> int:
    """How many audio tokens a model that makes ``tokens_per_second`` may sample for ``text``.

    Never more than ``ceiling`` (the model's own limit), never fewer than one second's worth.
    """
    wanted = math.ceil(tokens_per_second * speech_seconds_limit(text))
    return max(1, min(ceiling, max(wanted, math.ceil(tokens_per_second))))


def check_text(text: str) -> None:
    """Refuse a text with nothing to speak (empty or only whitespace)."""
    if not text.strip():
        raise TTSHostError("the text to speak is empty")


def check_sampling(options: dict[str, Any], *, zero_means_off: bool = False) -> None:
    """Refuse a sampling option out of range, naming it and its value (``None`` values are unset).

    ``zero_means_off``: the backend reads temperature 0 as greedy and top-k 0 as no top-k.
    """
    for name, value in options.items():
        if value is None or name not in _SAMPLING_RULES:
            continue
        test, wanted = (_ZERO_MEANS_OFF if zero_means_off and name in _ZERO_MEANS_OFF else _SAMPLING_RULES)[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TTSHostError(f"--{name.replace('_', '-')} {value}: must be a finite number ({wanted})")
        if not test(value):
            raise TTSHostError(f"--{name.replace('_', '-')} {value}: must be {wanted}")


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` cut into sentences of at most ``max_chars`` characters (longer ones at clauses, then words)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces: list[str] = []
    for sentence in _sentences(" ".join(text.split())):
        pieces += [sentence] if len(sentence) <= max_chars else _cut(sentence, max_chars)
    return pieces


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start:match.start()].split()
        if match.group().strip() == "." and words and _abbreviation(words[-1]):
            continue
        sentences.append(text[start:match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _abbreviation(word: str) -> bool:
    """Whether a word before a full stop is an abbreviation or an initial ("Dr.", "J.")."""
    word = word.lstrip("\"'“‘(")
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word.isupper())


def _cut(sentence: str, max_chars: int) -> list[str]:
    """An overlong sentence in pieces: whole clauses packed while they fit; a clause too long alone, by words."""
    pieces: list[str] = []
    for clause in (c.strip() for c in _split_after(_CLAUSE_END, sentence)):
        if len(clause) > max_chars:
            pieces += _words(clause, max_chars)
        elif pieces and len(pieces[-1]) + 1 + len(clause) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {clause}"
        elif clause:
            pieces.append(clause)
    return pieces


def _split_after(pattern: re.Pattern, text: str) -> Iterable[str]:
    start = 0
    for match in pattern.finditer(text):
        yield text[start:match.end()]
        start = match.end()
    yield text[start:]


def _words(clause: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for word in clause.split():
        while len(word) > max_chars:  # a run without spaces (CJK, a long token): cut it
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {word}"
        elif word:
            pieces.append(word)
    return pieces


def pause(sample_rate: int) -> np.ndarray:
    """The silence put between two spoken pieces of a text."""
    return np.zeros(round(PAUSE_SECONDS * sample_rate), dtype=np.float32)


def join_speech(pieces: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """Spoken pieces of one text as one float32 signal, a short pause between each two."""
    parts: list[np.ndarray] = []
    for index, piece in enumerate(pieces):
        if index:
            parts.append(pause(sample_rate))
        parts.append(np.asarray(piece, dtype=np.float32).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def check_references(references: Sequence[Path], *, min_seconds: float = MIN_REFERENCE_SECONDS) -> None:
    """Refuse reference clips a voice cannot be cloned from, naming the clip and what is wrong.

    Every clip must exist, decode, hold only finite samples, not be silent and last at least
    ``min_seconds``. Cheap: only the audio is read, no model.
    """
    from tts_host.data.audio import AudioReader

    if not references:
        raise TTSHostError("cloning a voice needs at least one reference clip (--ref)")
    for ref in references:
        path = Path(ref)
        if not path.is_file():
            raise TTSHostError(f"reference clip {path} does not exist or is not a file")
        try:
            reader = AudioReader(path)
            audio, rate = reader.read(0, reader.info.frames), reader.info.sample_rate
        except TTSHostError as exc:
            raise TTSHostError(f"reference clip {exc}") from None
        if not np.isfinite(audio).all():
            raise TTSHostError(f"reference clip {path}: the audio has NaN or infinite samples")
        if len(audio) < min_seconds * rate:
            raise TTSHostError(f"reference clip {path}: {len(audio) / rate:.2f} s of audio is too short "
                               f"(at least {min_seconds:g} s of speech is needed)")
        if float(np.abs(audio).max()) < SILENT_PEAK:
            raise TTSHostError(f"reference clip {path}: the audio is silent")


@dataclass
class SpeechResult:
    """What a backend's ``speak`` wrote and how fast (the same for every backend)."""

    path: Path
    sample_rate: int
    seconds: float
    wall_seconds: float
    first_audio_seconds: float | None = None  # streamed speech only

    @property
    def real_time_factor(self) -> float:
        """Wall time / audio time (below 1 is faster than real time)."""
        return self.wall_seconds / self.seconds if self.seconds else float("inf")

    def summary_lines(self) -> list[str]:
        """Lines the CLI prints."""
        lines = [f"wrote {self.path} ({self.seconds:.2f} s at {self.sample_rate} Hz, "
                 f"synthesis {self.wall_seconds:.2f} s, real-time factor {self.real_time_factor:.2f})"]
        if self.first_audio_seconds is not None:
            lines.append(f"time to first audio: {self.first_audio_seconds:.3f} s")
        return lines


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM through a temp file and rename, so a failed run leaves no half-written wav."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)
    return path
