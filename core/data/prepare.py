"""``prepare_dataset``: ingest, clean, slice, filter and split a speaker's recordings into a folder.

Re-running on unchanged input is a no-op: each source file's clips are reused when its
fingerprint (path, size, mtime, transcript, settings) matches the manifest and its clip files
are intact, and the manifest is rewritten only when something changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from tts_host.data.dataset import (
    MANIFEST, WAVS, Clip, PreparedDataset, Reject, file_intact, read_manifest,
)
from tts_host.data.errors import DatasetError
from tts_host.data.ingest import SourceItem, ingest
from tts_host.data.settings import DataSettings, default_settings

PIPELINE_VERSION = 1
LOCK = ".prepare.lock"


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
    become rejects in the result; only an unusable source or output folder raises DatasetError.
    """
    if not speaker or not speaker.strip():
        raise DatasetError("a speaker name is required")
    settings = (settings or default_settings()).with_overrides({"sample_rate": sample_rate, "language": language})
    source_path, root = Path(source).resolve(), Path(out_dir).resolve()
    if root == source_path or source_path.is_relative_to(root):
        raise DatasetError(f"{out_dir}: the output folder must not contain the source")
    if not source_path.exists():
        raise DatasetError(f"{source}: no such file or folder")
    _previous_manifest(root, speaker)  # refuse a foreign folder before creating anything in it
    with _exclusive(root):
        return _prepare(source_path, root, speaker, fmt, settings, workers, progress)


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
    """The body of :func:`prepare_dataset`, run under the folder lock."""
    previous = _previous_manifest(root, speaker)
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
        _remove_stale(root, clips)
    return dataset


def _previous_manifest(root: Path, speaker: str) -> dict[str, Any]:
    """The manifest already in ``root`` (empty dict for a new folder); refuses foreign folders."""
    if not root.exists():
        return {}
    if not root.is_dir():
        raise DatasetError(f"{root}: exists and is not a folder")
    if not (root / MANIFEST).exists():
        if any(path.name != LOCK for path in root.iterdir()):
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


def _clip_ids(items: list[SourceItem]) -> list[str]:
    """A unique, file-name-safe id per item, derived from its relative path."""
    ids, seen = [], set()
    for item in items:
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", item.name.rsplit(".", 1)[0]).strip("_") or "clip"
        candidate, number = base, 2
        while candidate in seen:
            candidate, number = f"{base}_{number}", number + 1
        seen.add(candidate)
        ids.append(candidate)
    return ids


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


def _remove_stale(root: Path, clips: list[Clip]) -> None:
    """Delete wavs of clips that are no longer in the manifest (after the new manifest is written)."""
    keep = {clip.audio_path.name for clip in clips}
    for path in (root / WAVS).glob("*.wav"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
    for path in (root / WAVS).glob(".tmp-*"):
        path.unlink(missing_ok=True)


