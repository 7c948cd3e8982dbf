"""``tts-host library recover``: rebuild the index from the record journal and the blobs.

The old index (and its WAL) is moved aside, never deleted; a new index is built in one
transaction from every record file: bases first, then checkpoints (each after its parent),
then voices. Every blob on disk is registered; a record whose file has no blob is still
restored (``voices verify`` then names the missing file, and ``voices repair`` can supply it).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_host.errors import TTSHostError
from tts_host.speakers import db
from tts_host.speakers.blobs import BlobStore, fsync_dir
from tts_host.speakers.index_health import hold_library_lock, open_index
from tts_host.speakers.journal import RecordJournal
from tts_host.speakers.snapshots import settle

INDEX_SUFFIXES = ("", "-wal", "-shm")


@dataclass
class RecoverReport:
    """What a recovery restored, moved aside and could not restore."""

    bases: int = 0
    checkpoints: int = 0
    voices: int = 0
    blobs: int = 0
    moved_aside: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_blobs: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)  # records a crashed write was changing
    unused_blobs: int = 0  # files in the store no record uses (a record file may be gone)


def _move_aside(index: Path) -> list[Path]:
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    moved = []
    for suffix in INDEX_SUFFIXES:
        path = index.with_name(index.name + suffix)
        if path.exists():
            target = index.with_name(f"{index.name}.broken-{stamp}{suffix}")
            path.rename(target)
            moved.append(target)
    return moved


def _insert_files(conn: sqlite3.Connection, files: list[dict[str, Any]], report: RecoverReport, what: str) -> int:
    manifest_id = conn.execute("INSERT INTO manifests DEFAULT VALUES").lastrowid
    for entry in files:
        known = conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (entry["sha256"],)).fetchone()
        if known is None:
            conn.execute("INSERT INTO blobs (sha256, size) VALUES (?, ?)", (entry["sha256"], entry["size"]))
            report.missing_blobs.append(f"{what} file {entry['path']} (sha256 {entry['sha256'][:16]})")
        conn.execute("INSERT INTO manifest_files (manifest_id, role, path, sha256, size) VALUES (?, ?, ?, ?, ?)",
                     (manifest_id, entry["role"], entry["path"], entry["sha256"], entry["size"]))
    return manifest_id


def _parents_first(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_uid = {c["uid"]: c for c in checkpoints}
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()

    def place(ckpt: dict[str, Any], seen: frozenset[str]) -> None:
        if ckpt["uid"] in placed or ckpt["uid"] in seen:
            return
        parent = by_uid.get(ckpt.get("parent_uid") or "")
        if parent is not None:
            place(parent, seen | {ckpt["uid"]})
        placed.add(ckpt["uid"])
        ordered.append(ckpt)

    for ckpt in sorted(checkpoints, key=lambda c: c.get("created", 0.0)):
        place(ckpt, frozenset())
    return ordered


def _rebuild(conn: sqlite3.Connection, records: dict[str, list[dict[str, Any]]], blobs: BlobStore,
             report: RecoverReport) -> None:
    for sha, path in blobs.on_disk().items():
        conn.execute("INSERT INTO blobs (sha256, size) VALUES (?, ?)", (sha, path.stat().st_size))
        report.blobs += 1
    base_ids: dict[str, int] = {}
    for base in sorted(records["bases"], key=lambda b: b.get("created", 0.0)):
        manifest_id = _insert_files(conn, base["files"], report, f"base '{base['name']}'")
        base_ids[base["name"]] = conn.execute(
            "INSERT INTO bases (id, name, backend, manifest_id, architecture, digest, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (base.get("id"), base["name"], base["backend"], manifest_id, json.dumps(base["architecture"], sort_keys=True),
             base["digest"], base["created"])).lastrowid
        report.bases += 1
    checkpoint_ids: dict[str, int] = {}
    for ckpt in _parents_first(records["checkpoints"]):
        base_id = base_ids.get(ckpt["base"])
        if base_id is None:
            report.skipped.append(f"checkpoint {ckpt['uid'][:12]}: its base '{ckpt['base']}' has no record")
            continue
        parent_uid = ckpt.get("parent_uid")
        if parent_uid and parent_uid not in checkpoint_ids:
            report.skipped.append(f"checkpoint {ckpt['uid'][:12]}: its parent {parent_uid[:12]} has no record "
                                  "(restored without its lineage)")
        manifest_id = _insert_files(conn, ckpt["files"], report, f"checkpoint {ckpt['uid'][:12]}")
        checkpoint_ids[ckpt["uid"]] = conn.execute(
            "INSERT INTO checkpoints (id, uid, backend, base_id, parent_id, speakers, training_config, metrics, "
            "manifest_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ckpt.get("id"), ckpt["uid"], ckpt["backend"], base_id, checkpoint_ids.get(parent_uid or ""),
             json.dumps(ckpt["speakers"]), json.dumps(ckpt["training_config"], sort_keys=True),
             json.dumps(ckpt["metrics"], sort_keys=True), manifest_id, ckpt["created"])).lastrowid
        report.checkpoints += 1
    for voice in sorted(records["voices"], key=lambda v: v.get("created", 0.0)):
        base_id = base_ids.get(voice["base"])
        checkpoint_id = checkpoint_ids.get(voice["checkpoint_uid"]) if voice.get("checkpoint_uid") else None
        if base_id is None or (voice.get("checkpoint_uid") and checkpoint_id is None):
            report.skipped.append(f"voice '{voice['name']}': its model has no record")
            continue
        manifest_id = _insert_files(conn, voice["files"], report, f"voice '{voice['name']}'")
        conn.execute(
            "INSERT INTO voices (id, name, backend, base_id, checkpoint_id, manifest_id, language, notes, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (voice.get("id"), voice["name"], voice["backend"], base_id, checkpoint_id, manifest_id, voice.get("language"),
             voice.get("notes", ""), voice["created"]))
        report.voices += 1
    used = {row[0] for row in conn.execute("SELECT sha256 FROM manifest_files")}
    report.unused_blobs = sum(1 for sha in blobs.on_disk() if sha not in used)


def _settle_into(index: Path, journal: RecordJournal) -> list[str]:
    """Settle crashed writers' pending lists: against ``index`` when it opens, else name them uncertain."""
    orphans = list(journal.orphaned_pending())
    if not orphans:
        return []
    try:
        conn = open_index(index.parent)
    except TTSHostError:
        return [f"{kind[:-1]} {key!r}" for _, entries in orphans for kind, key in dict.fromkeys(entries)]
    try:
        with db.transaction(conn):
            settle(journal, conn, [entry for _, entries in orphans for entry in entries])
    finally:
        conn.close()
    journal.clear_pending()
    for path, _ in orphans:
        path.unlink(missing_ok=True)
    return []


def recover(root: Path, *, force: bool = False) -> RecoverReport:
    """Rebuild the index of the library at ``root`` from its record files and blobs.

    Refused while another process has the library open, and on a healthy index unless
    ``force``. The new index is built beside the old one and renamed into place only once it
    is whole; the old one is kept as ``index.sqlite.broken-<time>-<random>``.
    """
    lock = hold_library_lock(root, exclusive=True)
    try:
        index = root / "index.sqlite"
        healthy = _opens(root)
        if healthy and not force:
            raise TTSHostError(f"library index {index} is healthy: nothing to recover "
                               "(`tts-host library recover --force` rebuilds it from the record journal anyway)")
        journal = RecordJournal(root)
        uncertain = _settle_into(index, journal)
        records, unreadable = journal.load()
        if not any(records.values()):
            raise TTSHostError(f"no record files under {journal.dir}: the index cannot be rebuilt from them "
                               "(the blobs stay where they are)")
        report = RecoverReport(skipped=[f"unreadable record file {line}" for line in unreadable], uncertain=uncertain)
        building = index.with_name(f"{index.name}.rebuilding-{os.getpid()}")
        conn = db.connect(building)
        try:
            with db.transaction(conn):
                _rebuild(conn, records, BlobStore(root), report)
        except (KeyError, TypeError, ValueError, sqlite3.Error) as exc:
            raise TTSHostError(f"cannot rebuild {index} from {journal.dir}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
            for suffix in INDEX_SUFFIXES[1:]:
                building.with_name(building.name + suffix).unlink(missing_ok=True)
        report.moved_aside = _move_aside(index)
        os.replace(building, index)
        fsync_dir(root)
        for path, _ in journal.orphaned_pending():
            path.unlink(missing_ok=True)  # their keys are in the new index as the journal had them
        return report
    finally:
        building = root / f"index.sqlite.rebuilding-{os.getpid()}"
        building.unlink(missing_ok=True)
        os.close(lock)


def _opens(root: Path) -> bool:
    try:
        open_index(root).close()
    except TTSHostError:
        return False
    return True
