"""The prepared dataset: clips, rejects and the manifest that stores them.

A prepared dataset is a folder::

    manifest.json   everything below, authoritative
    clips.csv       one row per kept clip (id|audio|text|speaker|language|split|duration|sha256)
    wavs/<id>-<sha256 prefix>.wav   mono 16-bit PCM at the dataset's sample rate, peak-normalised
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tts_host.data.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

MANIFEST = "manifest.json"
CLIPS_CSV = "clips.csv"
WAVS = "wavs"
FORMAT = "tts-host-dataset/1"

# Every reason a file or segment is rejected, with the line the report shows for it.
REASONS: dict[str, str] = {
    "missing_file": "a transcript line names an audio file that does not exist",
    "not_utf8": "a metadata line is not valid UTF-8",
    "bad_line": "a metadata line does not have the fields its format needs",
    "other_speaker": "the line belongs to another speaker",
    "empty_transcript": "the transcript is empty",
    "empty_file": "the audio file is empty (0 bytes)",
    "undecodable": "the audio file cannot be decoded",
    "non_finite": "the audio holds NaN or infinite samples",
    "silent": "no speech above the silence threshold",
    "clipping": "too many samples at full scale",
    "too_short": "shorter than min_seconds",
    "too_long": "longer than the allowed maximum",
    "no_pause": "speech runs longer than max_seconds without a pause to cut at",
    "low_speech_ratio": "too little speech (speech ratio below min_speech_ratio)",
    "low_snr": "estimated SNR below min_snr_db",
    "high_spectral_entropy": "noise-like spectrum (spectral entropy above max_spectral_entropy)",
}


@dataclass(frozen=True)
class Clip:
    """One kept clip of a prepared dataset."""

    id: str
    audio_path: Path
    text: str
    duration: float
    speaker: str
    language: str
    split: str  # "train" or "heldout"
    sha256: str  # of the clip's wav file: the key of its cached features
    source: str  # the source file, relative to the ingested folder or list file
    start: float  # seconds into the source where the clip starts
    end: float
    sliced: bool  # cut from a longer recording (False: a whole, trimmed file)
    scores: dict[str, float] = field(default_factory=dict)

    def read(self, sample_rate: int | None = None) -> "np.ndarray":
        """The clip as mono float32; resampled (soxr HQ) when ``sample_rate`` differs from the file's."""
        from tts_host.data.audio import read_audio

        return read_audio(self.audio_path, sample_rate)

    def to_json(self, root: Path) -> dict[str, Any]:
        """Manifest record, with the audio path relative to the dataset folder."""
        record = asdict(self)
        record["audio_path"] = self.audio_path.relative_to(root).as_posix()
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any], root: Path) -> "Clip":
        """Inverse of :meth:`to_json`."""
        return cls(**{**record, "audio_path": root / record["audio_path"]})


@dataclass(frozen=True)
class Reject:
    """A file, line or segment left out, with its reason code (see :data:`REASONS`) and one-line detail."""

    source: str
    reason: str
    detail: str
    start: float = 0.0
    end: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds of audio rejected (0 when the file could not be read at all)."""
        return max(0.0, self.end - self.start)


@dataclass
class PreparedDataset:
    """Clips kept and rejected, and how they were made; :func:`load_prepared` reads one back."""

    root: Path
    speaker: str
    sample_rate: int
    clips: list[Clip]
    rejects: list[Reject]
    notes: list[str]
    settings: dict[str, Any]
    source: str = ""
    source_format: str = ""
    sources: dict[str, Any] = field(default_factory=dict)
    reused: int = 0  # source files whose clips were reused unchanged by this prepare
    processed: int = 0  # source files decoded and processed by this prepare

    def split(self, name: str) -> list[Clip]:
        """Clips of one split, ``"train"`` or ``"heldout"``, in manifest order."""
        if name not in ("train", "heldout"):
            raise DatasetError(f"unknown split {name!r}: use 'train' or 'heldout'")
        return [clip for clip in self.clips if clip.split == name]

    @property
    def train(self) -> list[Clip]:
        """The training clips."""
        return self.split("train")

    @property
    def heldout(self) -> list[Clip]:
        """The held-out clips (for validation and forgetting measurements)."""
        return self.split("heldout")

    def to_json(self) -> dict[str, Any]:
        """The manifest document."""
        return {
            "format": FORMAT,
            "speaker": self.speaker,
            "sample_rate": self.sample_rate,
            "source": self.source,
            "source_format": self.source_format,
            "settings": self.settings,
            "notes": self.notes,
            "clips": [clip.to_json(self.root) for clip in self.clips],
            "rejects": [asdict(reject) for reject in self.rejects],
            "sources": self.sources,
        }

    def write(self) -> None:
        """Write clips.csv, then manifest.json, each atomically (temp file, fsync, rename)."""
        from tts_host.data.diskio import write_atomic

        write_atomic(self.root / CLIPS_CSV, _clips_csv(self.clips, self.root).encode("utf-8"))
        manifest = json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"
        write_atomic(self.root / MANIFEST, manifest.encode("utf-8"))


def _clips_csv(clips: list[Clip], root: Path) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="|", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["id", "audio", "text", "speaker", "language", "split", "duration", "sha256"])
    for clip in clips:
        writer.writerow([clip.id, clip.audio_path.relative_to(root).as_posix(), clip.text, clip.speaker,
                         clip.language, clip.split, f"{clip.duration:.3f}", clip.sha256])
    return buffer.getvalue()


def read_manifest(out_dir: Path | str) -> dict[str, Any]:
    """The raw manifest document of a prepared dataset folder (DatasetError if absent or damaged)."""
    path = Path(out_dir) / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{out_dir}: not a prepared dataset (no {MANIFEST}); run `tts-host dataset prepare`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: damaged manifest ({' '.join(str(exc).split())})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a {FORMAT} manifest")
    return document


def load_prepared(out_dir: Path | str) -> PreparedDataset:
    """Read a prepared dataset folder back; every clip's wav must exist."""
    root = Path(out_dir).resolve()
    document = read_manifest(root)
    try:
        clips = [Clip.from_json(record, root) for record in document["clips"]]
        rejects = [Reject(**record) for record in document["rejects"]]
        dataset = PreparedDataset(
            root=root, speaker=document["speaker"], sample_rate=int(document["sample_rate"]), clips=clips,
            rejects=rejects, notes=list(document["notes"]), settings=dict(document["settings"]),
            source=document["source"], source_format=document["source_format"], sources=document["sources"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{root / MANIFEST}: damaged manifest (bad or missing field {exc})") from None
    _check_clip_files(dataset)
    return dataset


def file_intact(path: Path, sha256: str, size: int, mtime_ns: int) -> bool:
    """Whether ``path`` still holds the bytes hashed as ``sha256``: a stat match, or a re-hash if only mtime moved."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != size:
        return False
    from tts_host.hashing import sha256_file

    return stat.st_mtime_ns == mtime_ns or sha256_file(path)[0] == sha256


def _check_clip_files(dataset: PreparedDataset) -> None:
    """Every clip file exists and still has its sha256 (re-hashed only when its mtime moved, e.g. after a copy)."""
    recorded = {clip_id: stat for entry in dataset.sources.values() for clip_id, stat in entry.get("files", {}).items()}
    missing = [clip.audio_path for clip in dataset.clips if not clip.audio_path.is_file()]
    if missing:
        raise DatasetError(f"{dataset.root}: {len(missing)} clip file(s) missing, first {missing[0]}; run prepare again")
    changed = [clip.audio_path for clip in dataset.clips
               if clip.id in recorded and not file_intact(clip.audio_path, clip.sha256, *recorded[clip.id])]
    if changed:
        raise DatasetError(f"{dataset.root}: {len(changed)} clip file(s) changed since prepare, first {changed[0]}; "
                           "run prepare again")
