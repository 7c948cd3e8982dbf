"""Training clips as a checkpoint remembers them, for replay and held-out checks in later fine-tunes.

Every fine-tune records, with its checkpoint, the clips of every speaker the checkpoint serves
(``training_config["clips"]``). A later fine-tune on top of it reads them back to replay a share of
the earlier speakers' clips and to measure their held-out loss before and after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tts_host.errors import TTSHostError


@dataclass(frozen=True)
class ClipRef:
    """One clip: where its audio is, what is said, and whether it trains or is held out."""

    id: str
    speaker: str
    audio_path: str
    sha256: str
    text: str
    language: str = "en"
    split: str = "train"
    duration: float = 0.0

    @classmethod
    def from_json(cls, record: Mapping[str, Any], speaker: str) -> "ClipRef":
        """A stored record (unknown keys ignored; ``speaker`` fills a missing speaker)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values.setdefault("speaker", speaker)
        try:
            return cls(**values)
        except TypeError as exc:
            raise TTSHostError(f"a recorded clip of speaker '{speaker}' is incomplete ({exc})") from exc

    def to_json(self) -> dict[str, Any]:
        """Plain data for the checkpoint's training record."""
        return asdict(self)

    def read(self, sample_rate: int | None = None) -> np.ndarray:
        """The clip's audio as mono float32 (resampled to ``sample_rate`` when given)."""
        from tts_host.data.audio import read_audio

        path = Path(self.audio_path)
        if not path.is_file():
            raise TTSHostError(f"clip {self.id} of speaker '{self.speaker}': {path} no longer exists "
                               "(prepare the speaker's data again)")
        return read_audio(path, sample_rate)


@dataclass
class SpeakerClips:
    """One speaker's clips, split into training and held-out."""

    train: list[ClipRef] = field(default_factory=list)
    heldout: list[ClipRef] = field(default_factory=list)

    @classmethod
    def of(cls, clips: Sequence[ClipRef]) -> "SpeakerClips":
        """``clips`` sorted by their split."""
        return cls([c for c in clips if c.split == "train"], [c for c in clips if c.split == "heldout"])

    def all(self) -> list[ClipRef]:
        """Training clips then held-out clips."""
        return [*self.train, *self.heldout]


def dataset_clips(dataset: Any) -> SpeakerClips:
    """The clips of a prepared dataset (:class:`tts_host.data.PreparedDataset`)."""
    return SpeakerClips.of([ClipRef(c.id, c.speaker, str(c.audio_path), c.sha256, c.text, c.language, c.split,
                                    float(c.duration)) for c in dataset.clips])


def recorded_clips(model: Any, without: str) -> dict[str, SpeakerClips]:
    """Clips recorded with a starting checkpoint, by speaker, except ``without`` (none for a base)."""
    recorded = (getattr(model, "training_config", None) or {}).get("clips", {})
    return {name: SpeakerClips.of([ClipRef.from_json(r, name) for r in records])
            for name, records in recorded.items() if name != without}
