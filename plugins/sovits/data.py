"""SoVITS training items: per clip, its 32 kHz audio, 25 Hz semantic codes and phoneme ids.

Codes come from the semantic codec component through the feature cache, keyed by the clip's
content hash and the protected semantic files' hashes: computed once per clip across epochs, runs
and voices (every voice of a base shares them). The codec loads only when a clip is not cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.sovits import HUBERT_RATE, SAMPLE_RATE

if TYPE_CHECKING:
    from tts_host.data import FeatureCache
    from tts_host.plugins.sovits.components import PhonemeTextEncoder, SemanticCodec
    from tts_host.training.clips import ClipRef

REFERENCE_SILENCE = 0.3  # seconds of silence after a clip before HuBERT, as upstream pads references


@dataclass(frozen=True)
class Item:
    """One clip ready for training: ``frames`` 50 Hz frames of audio, codes and phonemes."""

    clip_id: str
    speaker: str
    audio: np.ndarray  # float32, frames * hop samples at 32 kHz
    codes: np.ndarray  # int64, frames // 2
    phonemes: list[int]
    bert: np.ndarray | None = None  # float32 [bert_dim, len(phonemes)]: Chinese text with a Chinese BERT

    @property
    def frames(self) -> int:
        return 2 * len(self.codes)


@dataclass(frozen=True)
class Skipped:
    """A clip left out of training, and why."""

    clip_id: str
    reason: str


def clip_codes(clips: Sequence[ClipRef], semantic_key: str, codec: Callable[[], SemanticCodec],
               cache: FeatureCache, codec_name: str) -> list[np.ndarray]:
    """Semantic codes of every clip (16 kHz audio through HuBERT and the codebook), cached by content."""
    from tts_host.data import producer_id

    producer = producer_id(codec_name, semantic_key)

    def compute(clip: ClipRef) -> dict[str, np.ndarray]:
        return {"codes": codec().encode(clip.read(HUBERT_RATE)).astype(np.int64)}

    return [cache.get_or_compute(c.sha256, producer, {"sample_rate": HUBERT_RATE}, lambda c=c: compute(c))["codes"]
            for c in clips]


def build_items(clips: Sequence[ClipRef], codes: Sequence[np.ndarray], text: PhonemeTextEncoder, hop: int,
                bert_dim: int, cache: FeatureCache, bert_key: str | None) -> tuple[list[Item], list[Skipped]]:
    """Items of ``clips`` (audio cut to whole frames shared by codes and spectrogram); unusable ones skipped.

    Chinese clips get BERT features when ``bert_key`` (the BERT weights' hash) is given, through the cache.
    """
    from tts_host.data import producer_id

    items: list[Item] = []
    skipped: list[Skipped] = []
    for clip, clip_codes_ in zip(clips, codes):
        audio = clip.read(SAMPLE_RATE).astype(np.float32)
        frames = min(len(audio) // hop, 2 * len(clip_codes_)) // 2 * 2
        if frames < 4:
            skipped.append(Skipped(clip.id, f"{len(audio) / SAMPLE_RATE:.2f} s is too short for a semantic code"))
            continue
        try:
            phonemes = text.phonemes(clip.text, clip.language)
        except TTSHostError as exc:  # a transcript the front end cannot read is reported, not fatal
            skipped.append(Skipped(clip.id, f"transcript: {exc}"))
            continue
        bert = None
        if phonemes.word2ph is not None and bert_key is not None:
            bert = cache.get_or_compute(clip.sha256, producer_id("sovits-bert", bert_key), {"text": phonemes.text},
                                        lambda p=phonemes: {"bert": text.bert_features(p, bert_dim).numpy()})["bert"]
        items.append(Item(clip.id, clip.speaker, audio[: frames * hop], clip_codes_[: frames // 2], phonemes.ids,
                          bert))
    return items, skipped
