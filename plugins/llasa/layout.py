"""Where the Llasa special and speech tokens sit in a tokenizer's vocabulary.

Llasa extends a Llama vocabulary with eight marker tokens and one ``<|s_N|>`` token per codec
code. Nothing here assumes fixed ids: the layout is read from the tokenizer, and a vocabulary
whose speech tokens are missing, out of order or of the wrong count is refused with one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from tts_host.errors import ValidationError

TEXT_GENERATION_START = "<|TEXT_GENERATION_START|>"
TEXT_GENERATION_END = "<|TEXT_GENERATION_END|>"
TEXT_UNDERSTANDING_START = "<|TEXT_UNDERSTANDING_START|>"
TEXT_UNDERSTANDING_END = "<|TEXT_UNDERSTANDING_END|>"
SPEECH_GENERATION_START = "<|SPEECH_GENERATION_START|>"
SPEECH_GENERATION_END = "<|SPEECH_GENERATION_END|>"
SPEECH_UNDERSTANDING_START = "<|SPEECH_UNDERSTANDING_START|>"
SPEECH_UNDERSTANDING_END = "<|SPEECH_UNDERSTANDING_END|>"

MARKER_TOKENS: tuple[str, ...] = (
    TEXT_GENERATION_START,
    TEXT_GENERATION_END,
    TEXT_UNDERSTANDING_START,
    TEXT_UNDERSTANDING_END,
    SPEECH_GENERATION_START,
    SPEECH_GENERATION_END,
    SPEECH_UNDERSTANDING_START,
    SPEECH_UNDERSTANDING_END,
)

SPEECH_TOKEN_PATTERN = re.compile(r"<\|s_(\d+)\|>")


class LlasaBaseError(ValidationError):
    """A Llasa model, tokenizer or codec file that cannot be used: names the file, expected and actual."""


def speech_token(code: int) -> str:
    """The vocabulary entry for codec code ``code``: ``<|s_{code}|>``."""
    return f"<|s_{code}|>"


@dataclass(frozen=True)
class SpeechLayout:
    """Ids of the eight markers and of the contiguous block of speech tokens."""

    markers: Mapping[str, int]
    speech_offset: int
    speech_count: int

    @property
    def speech_start_id(self) -> int:
        """Id of ``<|SPEECH_GENERATION_START|>``."""
        return self.markers[SPEECH_GENERATION_START]

    @property
    def speech_end_id(self) -> int:
        """Id of ``<|SPEECH_GENERATION_END|>`` (the end-of-sequence of generation)."""
        return self.markers[SPEECH_GENERATION_END]

    def token_ids(self, codes: "list[int] | object") -> list[int]:
        """Token ids for a sequence of codec codes."""
        offset = self.speech_offset
        return [offset + int(code) for code in codes]  # type: ignore[union-attr]

    def codes(self, token_ids: "list[int] | object") -> list[int]:
        """Codec codes of the speech tokens in ``token_ids`` (other tokens are dropped)."""
        low, high = self.speech_offset, self.speech_offset + self.speech_count
        return [int(t) - low for t in token_ids if low <= int(t) < high]  # type: ignore[union-attr]

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, int], *, source: str = "tokenizer") -> "SpeechLayout":
        """Read the layout from a token -> id mapping; raise :class:`LlasaBaseError` if it is not Llasa's."""
        missing = [token for token in MARKER_TOKENS if token not in vocab]
        if missing:
            raise LlasaBaseError(source, "the eight Llasa marker tokens", f"missing {', '.join(missing)}")
        speech = {int(m.group(1)): index for token, index in vocab.items() if (m := SPEECH_TOKEN_PATTERN.fullmatch(token))}
        if not speech:
            raise LlasaBaseError(source, "speech tokens <|s_0|>, <|s_1|>, ... (one per codec code)", "no speech tokens")
        count = max(speech) + 1
        if len(speech) != count:
            gap = next(code for code in range(count) if code not in speech)
            raise LlasaBaseError(source, f"contiguous speech tokens <|s_0|>..{speech_token(count - 1)}",
                                 f"{speech_token(gap)} is missing ({len(speech)} of {count} present)")
        offset = speech[0]
        misplaced = next((code for code in range(count) if speech[code] != offset + code), None)
        if misplaced is not None:
            raise LlasaBaseError(source, f"{speech_token(misplaced)} at id {offset + misplaced} (consecutive ids)",
                                 f"{speech_token(misplaced)} has id {speech[misplaced]}")
        return cls(markers={token: vocab[token] for token in MARKER_TOKENS}, speech_offset=offset, speech_count=count)

    @classmethod
    def from_tokenizer(cls, tokenizer: object, *, source: str = "tokenizer") -> "SpeechLayout":
        """Read the layout from a transformers tokenizer."""
        return cls.from_vocab(tokenizer.get_vocab(), source=source)  # type: ignore[attr-defined]

    def check_codebook(self, codebook_size: int, *, source: str, codec_source: str) -> None:
        """Refuse a layout whose speech-token count differs from the codec's codebook size."""
        if self.speech_count != codebook_size:
            raise LlasaBaseError(
                source, f"{codebook_size} speech tokens (the codebook size of the codec, {codec_source})",
                f"{self.speech_count} speech tokens (<|s_0|>..{speech_token(self.speech_count - 1)})")
