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
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.model import SAMPLE_RATE

MIN_COND_SAMPLES = 66150  # coqui GPTArgs.min_conditioning_length (3 s)
MAX_COND_SAMPLES = 132300  # coqui GPTArgs.max_conditioning_length (6 s)
MAX_WAV_SAMPLES = 255995  # coqui GPTArgs.max_wav_length (~11.6 s)
MAX_TEXT_TOKENS = 200  # coqui GPTArgs.max_text_length
DVAE_PRODUCER = "xtts-dvae"


@dataclass(frozen=True)
class ClipRecord:
    """A training clip as a fine-tune remembers it (for replay and held-out checks in later runs)."""

    id: str
    speaker: str
    audio_path: str
    sha256: str
    text: str
    language: str
    split: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for the checkpoint's training record."""
        return dict(self.__dict__)


@dataclass
class TrainItem:
    """One clip ready for batching."""

    record: ClipRecord
    tokens: np.ndarray
    codes: np.ndarray
    samples: int


def records_from_dataset(dataset: Any) -> list[ClipRecord]:
    """Clip records of a prepared dataset (its clips must be 22.05 kHz)."""
    if dataset.sample_rate != SAMPLE_RATE:
        raise TTSHostError(f"{dataset.root}: prepared at {dataset.sample_rate} Hz; XTTS needs {SAMPLE_RATE} Hz")
    return [ClipRecord(c.id, c.speaker, str(c.audio_path), c.sha256, c.text, c.language, c.split)
            for c in dataset.clips]


def read_clip(record: ClipRecord) -> np.ndarray:
    """The clip's audio as mono float32 at 22.05 kHz, clipped to [-1, 1] as coqui loads it."""
    from tts_host.data.audio import read_audio

    path = Path(record.audio_path)
    if not path.is_file():
        raise TTSHostError(f"clip {record.id} of speaker '{record.speaker}': {path} no longer exists "
                           "(prepare the speaker's data again)")
    return np.clip(read_audio(path, SAMPLE_RATE), -1.0, 1.0).astype(np.float32)


class ItemBuilder:
    """Turns clip records into :class:`TrainItem` s: tokenised text and cached DVAE codes."""

    def __init__(self, model_folder: Path, dvae_sha256: str, cache: Any) -> None:
        from tts_host.plugins.xtts.components import BpeTextEncoder
        from tts_host.data.cache import producer_id

        self.folder = Path(model_folder)
        self.text = BpeTextEncoder(self.folder)
        self.cache = cache
        self.producer = producer_id(DVAE_PRODUCER, dvae_sha256)
        self._codec = None

    def codes_of(self, record: ClipRecord) -> tuple[np.ndarray, int]:
        """The clip's DVAE codes and sample count, from the feature cache or computed once and stored there."""
        params = {"sample_rate": SAMPLE_RATE, "mel": "dvae-1024-256-1024-80"}

        def compute() -> dict[str, np.ndarray]:
            audio = read_clip(record)
            return {"codes": self._codec_model().encode(audio), "samples": np.array([len(audio)], dtype=np.int64)}

        arrays = self.cache.get_or_compute(record.sha256, self.producer, params, compute)
        return arrays["codes"].astype(np.int64), int(arrays["samples"][0])

    def _codec_model(self):
        if self._codec is None:
            from tts_host.plugins.xtts.components import DvaeCodec

            self._codec = DvaeCodec(self.folder)
        return self._codec

    def build(self, records: Sequence[ClipRecord]) -> list[TrainItem]:
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


def conditioning_slice(audio: np.ndarray, rng: random.Random | None) -> tuple[np.ndarray, list[int]]:
    """A 3-6 s slice (random when ``rng`` is given, else the mid-length slice at 0), zero-padded to 6 s."""
    if rng is None:
        length = (MIN_COND_SAMPLES + MAX_COND_SAMPLES) // 2
    else:
        length = rng.randint(MIN_COND_SAMPLES, MAX_COND_SAMPLES)
    if len(audio) - length < 0:
        length = len(audio) // 2
    start = 0 if rng is None else rng.randint(0, len(audio) - length)
    piece = np.zeros(MAX_COND_SAMPLES, dtype=np.float32)
    piece[:length] = audio[start:start + length]
    return piece, [start, start + length]


class Collator:
    """Builds GPT batches (the tensors ``GPT.forward`` takes) from items, as coqui's trainer does."""

    def __init__(self, mel_norms: Any) -> None:
        from tts_host.plugins.xtts.model import mel_extractor

        self.style_mel = mel_extractor(mel_norms, "style")

    def __call__(self, items: Sequence[TrainItem], rng: random.Random | None) -> dict[str, Any]:
        """``rng`` draws the conditioning slices (training); ``None`` gives coqui's evaluation batch."""
        import torch

        count = len(items)
        text_lengths = torch.tensor([len(i.tokens) for i in items], dtype=torch.long)
        text = torch.zeros(count, int(text_lengths.max()), dtype=torch.int32)
        code_count = max(len(i.codes) for i in items)
        codes = torch.zeros(count, code_count, dtype=torch.long)
        conds, idxs = [], []
        for row, item in enumerate(items):
            text[row, : len(item.tokens)] = torch.from_numpy(item.tokens.astype(np.int32))
            codes[row, : len(item.codes)] = torch.from_numpy(item.codes)
            piece, span = conditioning_slice(read_clip(item.record), rng)
            conds.append(torch.from_numpy(piece))
            idxs.append(span)
        with torch.no_grad():
            cond_mels = self.style_mel(torch.stack(conds)).unsqueeze(1)  # (B, 1, 80, frames)
        return {
            "text_inputs": text,
            "text_lengths": text_lengths,
            "audio_codes": codes,
            "wav_lengths": torch.tensor([i.samples for i in items], dtype=torch.long),
            "cond_mels": cond_mels,
            "cond_idxs": torch.tensor(idxs, dtype=torch.long) if rng is not None else None,
        }


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


def masks_every_audio_target(gpt: Any, batch: dict[str, Any]) -> bool:
    """Whether coqui's conditioning-span masking would leave the batch with no audio-code target at all.

    ``GPT.forward`` ignores the targets under the last row's conditioning span, converting the
    span from samples to code positions with the perceiver's factor (256) rather than the
    codes' (1024), so the span is four times too wide. With one row per batch it can cover the
    whole clip; the mean cross-entropy over no targets is then NaN. Only that case is detected.
    """
    if len(batch["text_lengths"]) != 1:
        return False  # the other rows keep their targets
    factor = gpt.perceiver_cond_length_compression if gpt.use_perceiver_resampler else gpt.code_stride_len
    start, end = (int(v) // factor for v in batch["cond_idxs"][0])
    last_target = -(-int(batch["wav_lengths"][0]) // gpt.code_stride_len) + 3  # GPT.forward's code length
    return start <= 0 and end >= last_target + 1
