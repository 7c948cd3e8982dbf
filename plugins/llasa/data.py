"""Llasa training data: codec codes per clip (cached by content) and LLaSA-style training rows.

A row is the chat-templated prompt (user turn with the text between the understanding
markers, optionally tagged with the speaker), then ``<|SPEECH_GENERATION_START|>``, the clip's
speech tokens, ``<|SPEECH_GENERATION_END|>`` and the end-of-turn token. Labels are -100 up to
and including the speech start and on the end-of-turn token: the model learns the speech and
where it ends. A clip whose row exceeds the length cap is skipped with its reason, never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from tts_host.plugins.llasa.layout import SpeechLayout
from tts_host.plugins.llasa.prompts import prompt_ids
from tts_host.plugins.llasa.tokenizer import END_OF_TURN
from tts_host.plugins.llasa import SAMPLE_RATE

if TYPE_CHECKING:
    from tts_host.data import Clip, FeatureCache
    from tts_host.interfaces import Codec
    from tts_host.training.clips import ClipRef

IGNORE = -100


@dataclass(frozen=True)
class Row:
    """One training row: token ids and labels of equal length."""

    clip_id: str
    input_ids: list[int]
    labels: list[int]
    speaker: str | None = None

    @property
    def speech_tokens(self) -> int:
        """Number of labelled positions (speech tokens + the end of speech)."""
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class Skipped:
    """A clip left out of training, and why."""

    clip_id: str
    reason: str


def clip_codes(clips: Sequence[Clip | ClipRef], codec_weights_sha256: str, codec: Callable[[], Codec],
               cache: FeatureCache | None = None, codec_name: str = "xcodec2") -> list[np.ndarray]:
    """Codec codes of every clip, computed once per (codec component, its weights, audio) through the feature cache.

    ``codec`` gives the codec component; it is called only when some clip is not cached yet.
    """
    from tts_host.data import FeatureCache, producer_id

    cache = cache if cache is not None else FeatureCache()
    producer = producer_id(codec_name, codec_weights_sha256)
    params = {"sample_rate": SAMPLE_RATE}

    def compute(clip: Clip | ClipRef) -> dict[str, np.ndarray]:
        return {"codes": codec().encode(clip.read(SAMPLE_RATE)).astype(np.int64)}

    return [cache.get_or_compute(clip.sha256, producer, params, lambda c=clip: compute(c))["codes"] for clip in clips]


def build_row(tokenizer: Any, layout: SpeechLayout, clip_id: str, text: str, codes: Sequence[int], *,
              max_length: int, speaker: str | None = None) -> Row | Skipped:
    """The training row of one clip, or :class:`Skipped` when it is over ``max_length`` tokens."""
    if len(codes) == 0:
        return Skipped(clip_id, "the codec produced no codes (clip too short)")
    prompt = prompt_ids(tokenizer, layout, text, speaker=speaker)
    speech = layout.token_ids(codes) + [layout.speech_end_id]
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    total = len(prompt) + len(speech) + 1
    if total > max_length:
        return Skipped(clip_id, f"{total} tokens ({len(prompt)} prompt + {len(codes)} speech + 2 end) exceed the "
                                f"length cap of {max_length}; skipped, not truncated")
    return Row(
        clip_id=clip_id,
        input_ids=prompt + speech + [end_of_turn],
        labels=[IGNORE] * len(prompt) + speech + [IGNORE],
        speaker=speaker,
    )


def build_rows(tokenizer: Any, layout: SpeechLayout, items: Iterable[tuple[str, str, Sequence[int]]], *,
               max_length: int, speaker: str | None = None) -> tuple[list[Row], list[Skipped]]:
    """Rows for ``(clip_id, text, codes)`` items; over-long clips are returned as skipped with a reason."""
    rows: list[Row] = []
    skipped: list[Skipped] = []
    for clip_id, text, codes in items:
        made = build_row(tokenizer, layout, clip_id, text, codes, max_length=max_length, speaker=speaker)
        (rows if isinstance(made, Row) else skipped).append(made)  # type: ignore[arg-type]
    return rows, skipped


def dataset_rows(tokenizer: Any, layout: SpeechLayout, clips: Sequence[Clip | ClipRef], codec_weights_sha256: str, *,
                 max_length: int, codec: Callable[[], Codec], speaker: str | None = None,
                 cache: FeatureCache | None = None, codec_name: str = "xcodec2") -> tuple[list[Row], list[Skipped]]:
    """Rows of prepared clips: codes through the feature cache, then :func:`build_rows`."""
    codes = clip_codes(clips, codec_weights_sha256, codec, cache, codec_name)
    return build_rows(tokenizer, layout, ((c.id, c.text, k) for c, k in zip(clips, codes)),
                      max_length=max_length, speaker=speaker)
