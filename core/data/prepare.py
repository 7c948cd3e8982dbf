"""``prepare_dataset``: ingest, clean, slice, filter and split a speaker's recordings into a folder.

Re-running on unchanged input is a no-op: each source file's clips are reused when its
fingerprint (path, size, mtime, transcript, settings) matches the manifest and its clip files
are intact, and the manifest is rewritten only when something changed. A prepare into a folder
without a manifest first writes the marker ``.prepare-unfinished``, removed once the manifest is
written: a folder holding only a failed prepare's output is taken over by the next prepare.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from tts_host.data.dataset import (
    CLIPS_CSV, MANIFEST, WAVS, Clip, PreparedDataset, Reject, file_intact, read_manifest,
)
from tts_host.data.diskio import disk_full_reported
from tts_host.data.errors import DatasetError
from tts_host.data.ingest import SourceItem, ingest
from tts_host.data.settings import DataSettings, default_settings

PIPELINE_VERSION = 1
LOCK = ".prepare.lock"
MARKER = ".prepare-unfinished"  # written before the first clip of a new dataset, removed after its manifest
MAX_ID_BYTES = 200  # UTF-8 bytes of a clip id: with slice number, hash and ".wav" well within 255
_SLICE_ID = re.compile(r"(.+)_\d{3,}")
_CLIP_FILE = re.compile(r"(.+-[0-9a-f]{10}\.wav|\.tmp-.*)", re.DOTALL)  # what write_clip leaves in wavs/


def prepare_dataset(
    source: Path | str,
    out_dir: Path | str,
    speaker: str,
    sample_rate: int | None = None,
    *,
    fmt: str = "auto",
    language: str | None = None,
    settings: DataSettings | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> PreparedDataset:
    """Prepare ``source`` (folder or list file) for ``speaker`` into ``out_dir``; returns the dataset.

    ``sample_rate`` and ``language`` override ``settings`` (defaults: ``configs/data.yaml``).
    ``workers`` processes decode in parallel (default: one per CPU core). Bad lines and files
    become rejects in the result; only an unusable source, output folder or speaker name (the
    library's name rules), or a full disk, raises DatasetError.
    """
    speaker = _checked_speaker(speaker)
    settings = (settings or default_settings()).with_overrides({"sample_rate": sample_rate, "language": language})
    source_path, root = Path(source).resolve(), Path(out_dir).resolve()
    if root == source_path or source_path.is_relative_to(root):
        raise DatasetError(f"{out_dir}: the output folder must not contain the source")
    if not source_path.exists():
        raise DatasetError(f"{source}: no such file or folder")
    _previous_manifest(root, speaker)  # refuse a foreign folder before creating anything in it
    with disk_full_reported(root), _exclusive(root):
        return _prepare(source_path, root, speaker, fmt, settings, workers, progress)


def _checked_speaker(speaker: str) -> str:
    """``speaker`` NFC-normalised, if it follows the library's name rules; else a one-line DatasetError."""
    from tts_host.speakers.names import InvalidNameError, check_name

    try:
        return check_name(speaker, "speaker")
    except InvalidNameError as exc:
        raise DatasetError(str(exc)) from None


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` so concurrent prepares (e.g. one per training rank) run one by one."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _prepare(source_path: Path, root: Path, speaker: str, fmt: str, settings: DataSettings, workers: int | None,
             progress: bool) -> PreparedDataset:
    """The body of :func:`prepare_dataset`, run under the folder lock; a failure removes the clips it wrote."""
    previous = _previous_manifest(root, speaker)
    try:
        dataset = _build(source_path, root, speaker, fmt, settings, workers, progress, previous)
    except BaseException:  # free the space this run took; the previous manifest's clips stay
        _remove_stale(root, {Path(record["audio_path"]).name for record in previous.get("clips", [])})
        raise
    _remove_stale(root, {clip.audio_path.name for clip in dataset.clips})
    (root / MARKER).unlink(missing_ok=True)
    return dataset


def _build(source_path: Path, root: Path, speaker: str, fmt: str, settings: DataSettings, workers: int | None,
           progress: bool, previous: dict[str, Any]) -> PreparedDataset:
    """Ingest, reuse or process every source file, and write the manifest if it changed."""
    found = ingest(source_path, speaker, fmt, settings.language)
    items = [item for item in found.items if not item.audio.resolve().is_relative_to(root)]
    ids = _clip_ids(items)
    digest = settings.digest()

    fingerprints = [_fingerprint(item, clip_id, speaker, digest) for item, clip_id in zip(items, ids)]
    reused_sources: dict[str, dict[str, Any]] = {}
    jobs = []
    previous_clips = {record["id"]: record for record in previous.get("clips", [])}
    for item, clip_id, fingerprint in zip(items, ids, fingerprints):
        entry = previous.get("sources", {}).get(fingerprint)
        reusable = _reusable(root, entry, previous_clips) if entry else None
        if reusable:
            reused_sources[fingerprint] = reusable
        else:
            jobs.append((fingerprint, clip_id, item))

    results = {}
    if jobs:  # the runner imports numpy and the decoders: a no-op re-run never needs them
        from tts_host.data.runner import run_jobs

        if not previous:  # written in place, not via a temp file: it must exist before the first clip does
            with disk_full_reported(root / MARKER):
                (root / MARKER).write_text("tts-host dataset prepare: unfinished until manifest.json is written\n")
        results = run_jobs(jobs, speaker, root / WAVS, settings, workers=workers, progress=progress)
    sources: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    rejects: list[Reject] = list(found.rejects)
    for item, fingerprint in zip(items, fingerprints):
        if fingerprint in reused_sources:
            entry = reused_sources[fingerprint]
            records += [previous_clips[name] for name in entry["clips"]]
        else:
            result = results[fingerprint]
            entry = {"name": item.name, "seconds": round(result.seconds, 3),
                     "clips": [record["id"] for record in result.clips],
                     "files": {record["id"]: record.pop("file_stat") for record in result.clips},
                     "rejects": [_reject_json(reject) for reject in result.rejects]}
            records += [_clip_json(record, root) for record in result.clips]
        sources[fingerprint] = entry
        rejects += [Reject(**record) for record in entry["rejects"]]

    clips = assign_splits([Clip.from_json(record, root) for record in records], settings.heldout_fraction)
    dataset = PreparedDataset(
        root=root, speaker=speaker, sample_rate=settings.sample_rate, clips=clips, rejects=rejects,
        notes=found.notes + _notes(clips, settings), settings=settings.as_dict(), source=str(source_path),
        source_format=found.format, sources=sources, reused=len(reused_sources), processed=len(jobs))
    if dataset.to_json() != previous:
        (root / WAVS).mkdir(parents=True, exist_ok=True)
        dataset.write()
    return dataset


def _previous_manifest(root: Path, speaker: str) -> dict[str, Any]:
    """The manifest already in ``root`` (empty dict for a new folder); refuses foreign folders."""
    if not root.exists():
        return {}
    if not root.is_dir():
        raise DatasetError(f"{root}: exists and is not a folder")
    if not (root / MANIFEST).exists():
        if any(path.name != LOCK for path in root.iterdir()) and not _unfinished(root):
            raise DatasetError(f"{root}: folder is not empty and holds no prepared dataset; choose an empty folder")
        return {}
    try:
        document = read_manifest(root)
    except DatasetError:
        return {}  # damaged: everything is recomputed and the manifest rewritten
    if document.get("speaker") != speaker:
        raise DatasetError(f"{root}: holds the dataset of speaker {document.get('speaker')!r}, not {speaker!r}; "
                           "choose another output folder")
    return document


def _unfinished(root: Path) -> bool:
    """Whether ``root`` holds only an unfinished prepare's output: its marker, lock, clip and temp files."""
    if not (root / MARKER).is_file():
        return False
    if any(path.name not in (LOCK, MARKER, CLIPS_CSV, WAVS) and not path.name.startswith(".tmp-")
           for path in root.iterdir()):
        return False
    wavs = root / WAVS
    if not wavs.exists():
        return True
    return wavs.is_dir() and all(path.is_file() and _CLIP_FILE.fullmatch(path.name) for path in wavs.iterdir())


def clip_id_base(name: str) -> str:
    """A file-name-safe id for a source's relative path ``name``, less its extension.

    NFC-normalised; letters, marks and digits of any script, ``-`` and ``_`` are kept, every run
    of other characters (separators, punctuation, ``/``, ``\\``, dots, controls) becomes ``_``;
    at most ``MAX_ID_BYTES`` UTF-8 bytes; ``clip`` when nothing is left.
    """
    stem = unicodedata.normalize("NFC", name[:len(name) - len(PurePosixPath(name).suffix)])
    kept = "".join(char if char in "-_" or unicodedata.category(char)[0] in "LMN" else "\0" for char in stem)
    base = re.sub("\0+", "_", kept).strip("_")
    return base.encode()[:MAX_ID_BYTES].decode("utf-8", "ignore").rstrip("_") or "clip"


def _clip_ids(items: list[SourceItem]) -> list[str]:
    """A unique id per item (see :func:`clip_id_base`); ``_2``, ``_3``... added to repeats.

    The ids of a sliced item's clips (``<id>_000``, ...) never equal another item's id either.
    """
    ids: list[str] = []
    taken: set[str] = set()
    sliced: set[str] = set()  # ids of untranscribed items: their clips are <id>_NNN
    slice_like: set[str] = set()  # X of every id of the form X_NNN
    for item in items:
        base = clip_id_base(item.name)
        candidate, number = base, 2
        while candidate in taken or (candidate in slice_like if item.text is None
                                     else _slice_parent(candidate) in sliced):
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        if item.text is None:
            sliced.add(candidate)
        else:
            slice_like.add(_slice_parent(candidate))
        ids.append(candidate)
    return ids


def _slice_parent(clip_id: str) -> str:
    """``X`` when ``clip_id`` has the form of a slice id ``X_NNN``, else ""."""
    match = _SLICE_ID.fullmatch(clip_id)
    return match.group(1) if match else ""


def _fingerprint(item: SourceItem, clip_id: str, speaker: str, settings_digest: str) -> str:
    try:
        stat = item.audio.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime = -1, -1
    key = [PIPELINE_VERSION, str(item.audio), item.name, size, mtime, item.text, item.language, clip_id, speaker,
           settings_digest]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _reusable(root: Path, entry: dict[str, Any], previous_clips: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The source entry with fresh file stats when all its clip files still hold the bytes the manifest hashed."""
    files = entry.get("files", {})
    fresh = {}
    for clip_id in entry.get("clips", []):
        record = previous_clips.get(clip_id)
        if record is None or clip_id not in files:
            return None
        path = root / record["audio_path"]
        if not file_intact(path, record["sha256"], *files[clip_id]):
            return None
        stat = path.stat()
        fresh[clip_id] = [stat.st_size, stat.st_mtime_ns]
    return {**entry, "files": fresh}


def _clip_json(record: dict[str, Any], root: Path) -> dict[str, Any]:
    return {**record, "audio_path": Path(record["audio_path"]).relative_to(root).as_posix(), "split": "train"}


def _reject_json(reject: Reject) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(reject)


def split_of(clip_id: str, heldout_fraction: float) -> str:
    """``"heldout"`` when the SHA-256 of the clip id falls below ``heldout_fraction``: stable across runs."""
    value = int(hashlib.sha256(clip_id.encode()).hexdigest()[:12], 16) / float(1 << 48)
    return "heldout" if value < heldout_fraction else "train"


def assign_splits(clips: list[Clip], heldout_fraction: float) -> list[Clip]:
    """Clips with their split set by :func:`split_of`; with two or more clips both splits are non-empty."""
    splits = [split_of(clip.id, heldout_fraction) for clip in clips]
    if heldout_fraction > 0 and len(clips) >= 2:
        order = sorted(range(len(clips)), key=lambda index: hashlib.sha256(clips[index].id.encode()).hexdigest())
        if "heldout" not in splits:
            splits[order[0]] = "heldout"
        if "train" not in splits:
            splits[order[-1]] = "train"
    return [replace(clip, split=split) for clip, split in zip(clips, splits)]


def _notes(clips: list[Clip], settings: DataSettings) -> list[str]:
    long_whole = [clip for clip in clips if not clip.sliced and clip.duration > settings.max_seconds]
    if not long_whole:
        return []
    return [f"{len(long_whole)} transcribed file(s) longer than max_seconds {settings.max_seconds:g} kept whole: "
            "their transcripts cover the whole file, so slicing would misalign text"]


def _remove_stale(root: Path, keep: set[str]) -> None:
    """Delete the wavs (and temp files) in ``root/wavs`` whose names are not in ``keep``."""
    for path in (root / WAVS).glob("*.wav"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
    for path in (root / WAVS).glob(".tmp-*"):
        path.unlink(missing_ok=True)


