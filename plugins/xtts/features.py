"""Training items for the XTTS GPT: text tokens, cached DVAE codes, and conditioning slices.

DVAE codes are deterministic per clip and DVAE weights, so they are computed once through the
shared :class:`~tts_host.data.FeatureCache` (keyed by the clip's audio hash and the dvae.pth
blob hash) and reused across epochs and across sequential fine-tunes. Batches are built the
way coqui's ``XTTSDataset`` + ``GPTTrainer.format_batch_on_device`` build them, so the loss is
the same: a random 3-6 s slice of the clip, zero-padded to 6 s, as conditioning mel, and its
sample span as ``cond_idxs``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.interfaces import Codec, TextEncoder
from tts_host.training.clips import ClipRef
from tts_host.plugins.xtts import SAMPLE_RATE

MIN_COND_SAMPLES = 66150  # coqui GPTArgs.min_conditioning_length (3 s)
MAX_COND_SAMPLES = 132300  # coqui GPTArgs.max_conditioning_length (6 s)
MAX_WAV_SAMPLES = 255995  # coqui GPTArgs.max_wav_length (~11.6 s)
MAX_TEXT_TOKENS = 200  # coqui GPTArgs.max_text_length


@dataclass
class TrainItem:
    """One clip ready for batching."""

    record: ClipRef
    tokens: np.ndarray
    codes: np.ndarray
    samples: int


def read_clip(record: ClipRef) -> np.ndarray:
    """The clip's audio as mono float32 at 22.05 kHz, clipped to [-1, 1] as coqui loads it."""
    return np.clip(record.read(SAMPLE_RATE), -1.0, 1.0).astype(np.float32)


class ItemBuilder:
    """Turns clip records into :class:`TrainItem` s: tokenised text and cached DVAE codes."""

    def __init__(self, text_encoder: TextEncoder, codec: Callable[[], Codec], codec_name: str, dvae_sha256: str,
                 cache: Any) -> None:
        """``codec`` gives the codec component (``codec_name``) when a clip's codes are not cached yet."""
        from tts_host.data.cache import producer_id

        self.text = text_encoder
        self.codec = codec
        self.cache = cache
        self.producer = producer_id(codec_name, dvae_sha256)

    def codes_of(self, record: ClipRef) -> tuple[np.ndarray, int]:
        """The clip's DVAE codes and sample count, from the feature cache or computed once and stored there."""
        params = {"sample_rate": SAMPLE_RATE, "mel": "dvae-1024-256-1024-80"}

        def compute() -> dict[str, np.ndarray]:
            audio = read_clip(record)
            return {"codes": self.codec().encode(audio), "samples": np.array([len(audio)], dtype=np.int64)}

        arrays = self.cache.get_or_compute(record.sha256, self.producer, params, compute)
        return arrays["codes"].astype(np.int64), int(arrays["samples"][0])

    def build(self, records: Sequence[ClipRef]) -> list[TrainItem]:
        """Items for ``records``; a transcript the vocabulary cannot spell, or an over-long clip, is an error."""
        items = []
        for record in records:
            try:
                tokens = np.asarray(self.text.encode(record.text, record.language), dtype=np.int64)
            except TTSHostError as exc:
                raise TTSHostError(f"clip {record.id} of speaker '{record.speaker}': {exc}") from exc
            codes, samples = self.codes_of(record)
            if len(tokens) > MAX_TEXT_TOKENS or samples > MAX_WAV_SAMPLES:
                raise TTSHostError(f"clip {record.id} of speaker '{record.speaker}' is longer than XTTS trains on "
                                   f"(11.6 s, {MAX_TEXT_TOKENS} text tokens): prepare the data with max_seconds <= 11")
            items.append(TrainItem(record, tokens, codes, samples))
        return items


def conditioning_span(samples: int, rng: random.Random | None) -> tuple[int, int]:
    """``(start, length)`` of a clip's 3-6 s conditioning slice: random with ``rng``, else the mid-length slice at 0."""
    if rng is None:
        length = (MIN_COND_SAMPLES + MAX_COND_SAMPLES) // 2
    else:
        length = rng.randint(MIN_COND_SAMPLES, MAX_COND_SAMPLES)
    if samples - length < 0:
        length = samples // 2
    return (0 if rng is None else rng.randint(0, samples - length)), length


def conditioning_slice(audio: np.ndarray, rng: random.Random | None) -> tuple[np.ndarray, list[int]]:
    """A 3-6 s slice (see :func:`conditioning_span`), zero-padded to 6 s, and its sample span."""
    start, length = conditioning_span(len(audio), rng)
    return _padded(audio, start, length), [start, start + length]


def _padded(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    piece = np.zeros(MAX_COND_SAMPLES, dtype=np.float32)
    piece[:length] = audio[start:start + length]
    return piece


class Collator:
    """Builds GPT batches (the tensors ``GPT.forward`` takes) from items, as coqui's trainer does."""

    def __init__(self, mel_norms: Any) -> None:
        from tts_host.plugins.xtts.model import mel_extractor

        self.style_mel = mel_extractor(mel_norms, "style")

    def __call__(self, items: Sequence[TrainItem], rng: random.Random | None,
                 rows: range | None = None) -> dict[str, Any]:
        """The batch of ``items`` (CPU tensors), or of its ``rows`` only (one rank's non-empty part of a global batch).

        ``rng`` draws the conditioning slices (training); ``None`` gives coqui's evaluation batch.
        The slices of all ``items`` are drawn in order, so a row's slice does not depend on the
        part it is built in. coqui masks the audio targets under the conditioning span of a
        batch's last row only, so a part gets ``cond_idxs`` only when it holds that row;
        ``step_rows`` (the global batch's size) keeps :func:`masks_every_audio_target` global too.
        """
        import torch

        spans = [conditioning_span(item.samples, rng) for item in items]
        rows = range(len(items)) if rows is None else rows
        part = [items[i] for i in rows]
        text_lengths = torch.tensor([len(i.tokens) for i in part], dtype=torch.long)
        text = torch.zeros(len(part), int(text_lengths.max()), dtype=torch.int32)
        codes = torch.zeros(len(part), max(len(i.codes) for i in part), dtype=torch.long)
        conds = []
        for row, item in enumerate(part):
            text[row, : len(item.tokens)] = torch.from_numpy(item.tokens.astype(np.int32))
            codes[row, : len(item.codes)] = torch.from_numpy(item.codes)
            conds.append(torch.from_numpy(_padded(read_clip(item.record), *spans[rows[row]])))
        with torch.no_grad():
            cond_mels = self.style_mel(torch.stack(conds)).unsqueeze(1)  # (B, 1, 80, frames)
        masked = rng is not None and rows[-1] == len(items) - 1
        return {
            "text_inputs": text,
            "text_lengths": text_lengths,
            "audio_codes": codes,
            "wav_lengths": torch.tensor([i.samples for i in part], dtype=torch.long),
            "cond_mels": cond_mels,
            "cond_idxs": torch.tensor([[s, s + n] for s, n in (spans[i] for i in rows)]) if masked else None,
            "step_rows": len(items),
        }


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """``batch`` with its tensors on ``device``."""
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()}


def gpt_loss(gpt: Any, batch: dict[str, Any], text_weight: float, mel_weight: float):
    """coqui GPTTrainer's loss: text CE x text weight + mel CE x mel weight; returns (loss, text CE, mel CE).

    The conditioning latents come from :func:`~tts_host.plugins.xtts.conditioning.style_latents`
    (the same values as coqui's, without the work on the silent padding of each slice).
    """
    from tts_host.plugins.xtts.conditioning import style_latents

    cond_idxs = batch["cond_idxs"].clone() if batch["cond_idxs"] is not None else None  # GPT.forward edits it
    if cond_idxs is not None and masks_every_audio_target(gpt, batch):
        cond_idxs = None  # coqui's loss would be 0/0 (NaN): keep this batch's audio targets instead
    latents = style_latents(gpt, batch["cond_mels"])
    loss_text, loss_mel, _ = gpt(batch["text_inputs"], batch["text_lengths"], batch["audio_codes"],
                                 batch["wav_lengths"], cond_mels=batch["cond_mels"], cond_idxs=cond_idxs,
                                 cond_lens=None, cond_latents=latents)
    return loss_text * text_weight + loss_mel * mel_weight, loss_text, loss_mel


def target_counts(gpt: Any, batch: dict[str, Any]) -> tuple[int, int]:
    """How many text and audio-code targets :func:`gpt_loss`'s two means run over (as ``GPT.forward`` counts).

    A row has (text length + 1) text targets and (``GPT.forward``'s code length + 1) audio
    targets, where the code length is ceil(samples / 1024) + 3; the last row loses the audio
    targets under its conditioning span (see :func:`masks_every_audio_target`).
    """
    text = int((batch["text_lengths"] + 1).sum())
    codes = [-(-int(samples) // gpt.code_stride_len) + 3 for samples in batch["wav_lengths"]]
    mel = sum(codes) + len(codes)
    if batch["cond_idxs"] is not None and not masks_every_audio_target(gpt, batch):
        start, end = (int(v) // _span_factor(gpt) for v in batch["cond_idxs"][-1])
        mel -= max(0, min(end, codes[-1] + 1) - max(start, 0))
    return text, mel


def masks_every_audio_target(gpt: Any, batch: dict[str, Any]) -> bool:
    """Whether coqui's conditioning-span masking would leave the batch with no audio-code target at all.

    ``GPT.forward`` ignores the targets under the last row's conditioning span, converting the
    span from samples to code positions with the perceiver's factor (256) rather than the
    codes' (1024), so the span is four times too wide. With one row per batch it can cover the
    whole clip; the mean cross-entropy over no targets is then NaN. Only that case is detected
    (``step_rows``, when present, is the size of the global batch this batch is a part of).
    """
    if batch.get("step_rows", len(batch["text_lengths"])) != 1:
        return False  # the other rows keep their targets
    start, end = (int(v) // _span_factor(gpt) for v in batch["cond_idxs"][-1])
    last_target = -(-int(batch["wav_lengths"][-1]) // gpt.code_stride_len) + 3  # GPT.forward's code length
    return start <= 0 and end >= last_target + 1


def _span_factor(gpt: Any) -> int:
    """The samples-per-position factor ``GPT.forward`` divides ``cond_idxs`` by."""
    return gpt.perceiver_cond_length_compression if gpt.use_perceiver_resampler else gpt.code_stride_len
