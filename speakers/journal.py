"""The record journal: every base, checkpoint and voice also kept as one small JSON file.

The SQLite index is the library's fast view; ``library/records/`` is its second copy, from
which ``tts-host library recover`` rebuilds a lost or damaged index. A record file is written
(atomically, fsynced) inside the transaction that adds or changes the record, before it
commits; its key is first noted in the writer's pending list. After the transaction, under the
index's write lock, every pending key is settled against the index: its file is rewritten
from the index, or removed when the index has no such record (a removal, or a rollback). A
crash leaves the pending list behind, and the next opening of the library settles it. So,
outside the short window of a running write, the journal holds exactly the index's records.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

from tts_host.folders import write_file_atomically
from tts_host.oserrors import write_errors_reported
from tts_host.speakers.blobs import fsync_dir

KINDS = ("bases", "checkpoints", "voices")
RECORDS_DIR = "records"
COMPLETE = ".complete"  # written once every record of the index is in the journal


class RecordJournal:
    """Record files under ``root/records/<kind>/``, one per record, named by the hash of its key.

    Each instance has its own pending list, ``records/pending/<pid>-<random>``, created on the
    first :meth:`note` and held under an exclusive ``flock`` until it is cleared or the process
    ends; a list whose lock can be taken belongs to a writer that is gone.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / RECORDS_DIR
        self.pending_dir = self.dir / "pending"
        self.pending: list[tuple[str, str]] = []
        self._pending_file = self.pending_dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._pending_fd: int | None = None

    def note(self, kind: str, key: str) -> None:
        """Add ``(kind, key)`` to this instance's pending list (durably) before the record changes."""
        self._path(kind, key)
        with write_errors_reported(self.dir):
            if self._pending_fd is None:
                self._pending_fd = self._open_pending()
            # each entry on a line of its own, even after a line a failed write cut short
            os.write(self._pending_fd, ("\n" + json.dumps([kind, key], ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(self._pending_fd)
        self.pending.append((kind, key))

    def _open_pending(self) -> int:
        """Create the pending list locked: under a hidden name, locked, then renamed into view."""
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        hidden = self.pending_dir / f".{self._pending_file.name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(hidden, self._pending_file)
        return fd

    def clear_pending(self) -> None:
        """Forget this instance's pending list (once every key in it is settled)."""
        if self._pending_fd is not None:
            self._pending_file.unlink(missing_ok=True)
            os.close(self._pending_fd)
            self._pending_fd = None
        self.pending = []

    def _lists(self) -> list[Path]:
        if not self.pending_dir.is_dir():
            return []
        return [p for p in sorted(self.pending_dir.iterdir())
                if not p.name.startswith(".") and p != self._pending_file and p.is_file() and not p.is_symlink()]

    def _probe(self, exclusive: bool) -> Iterator[tuple[Path, bool]]:
        """Each other writer's pending list, and whether its lock could be taken (held while yielded)."""
        for path in self._lists():
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    free = True
                except BlockingIOError:
                    free = False
                yield path, free
            finally:
                os.close(fd)

    def orphaned_pending(self) -> Iterator[tuple[Path, list[tuple[str, str]]]]:
        """Pending lists whose writers are gone, each with its keys, locked here while the caller settles it."""
        for path, free in self._probe(exclusive=True):
            if free and path.exists():
                yield path, _entries(path)

    def live_pending_keys(self) -> set[tuple[str, str]]:
        """Keys that writers which are still running are changing right now."""
        return {entry for path, free in self._probe(exclusive=False) if not free for entry in _entries(path)}

    def _path(self, kind: str, key: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        return self.dir / kind / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:40] + ".json")

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        """Write the record ``key`` of ``kind`` (replacing its previous state) durably; notes it pending first."""
        if (kind, key) not in self.pending:
            self.note(kind, key)
        path = self._path(kind, key)
        data = json.dumps({"kind": kind, "key": key, "record": payload}, sort_keys=True, ensure_ascii=False)
        with write_errors_reported(self.dir, len(data)):  # the temp name tells gc its writer
            write_file_atomically(path, data.encode("utf-8"), path.with_name(f".{path.name}.{os.getpid()}.tmp"))

    def delete(self, kind: str, key: str) -> None:
        """Remove the record file of ``key`` (once the index no longer has the record)."""
        self._path(kind, key).unlink(missing_ok=True)

    def complete(self) -> bool:
        """Whether the journal holds every record (false for a library older than the journal)."""
        return (self.dir / COMPLETE).is_file()

    def mark_complete(self) -> None:
        """Note that every record of the index is now in the journal."""
        with write_errors_reported(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / COMPLETE).touch()
        fsync_dir(self.dir)

    def count(self) -> int:
        """How many record files there are."""
        return sum(1 for kind in KINDS for _ in self._files(kind))

    def _files(self, kind: str) -> list[Path]:
        folder = self.dir / kind
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def load(self) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Every record by kind, and one line per record file that could not be read."""
        records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        unreadable: list[str] = []
        for kind in KINDS:
            for path in self._files(kind):
                try:
                    entry = json.loads(path.read_text(encoding="utf-8"))
                    records[kind].append(dict(entry["record"]))
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    unreadable.append(f"{path}: {type(exc).__name__}: {exc}")
        return records, unreadable


def _entries(path: Path) -> list[tuple[str, str]]:
    """The ``(kind, key)`` entries of a pending list (a line a crash cut short is skipped)."""
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            kind, key = json.loads(line)
        except (ValueError, TypeError):
            continue
        try:
            str(key).encode("utf-8")
        except UnicodeEncodeError:
            continue  # no record can have such a key
        if kind in KINDS:
            entries.append((str(kind), str(key)))
    return entries
