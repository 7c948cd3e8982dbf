"""The record journal: every base, checkpoint and voice also kept as one small JSON file.

The SQLite index is the library's fast view; ``library/records/`` is its second copy, from
which ``tts-host library recover`` rebuilds a lost or damaged index. A record file is written
(atomically, fsynced) inside the transaction that adds or changes the record, before it
commits; its key is first noted in this process's pending list (``records/pending/<pid>``).
After the transaction, every pending key is settled against the index: its file is rewritten
from the index, or removed when the index has no such record (a removal, or a rollback). A
crash leaves the pending list behind, and the next opening of the library settles it. So the
journal never lacks a record the index has, and never keeps one the index dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from tts_host.oserrors import write_errors_reported
from tts_host.speakers.blobs import fsync_dir

KINDS = ("bases", "checkpoints", "voices")
RECORDS_DIR = "records"
COMPLETE = ".complete"  # written once every record of the index is in the journal


class RecordJournal:
    """Record files under ``root/records/<kind>/``, one per record, named by the hash of its key."""

    def __init__(self, root: Path) -> None:
        self.dir = root / RECORDS_DIR
        self.pending_dir = self.dir / "pending"
        self.pending: list[tuple[str, str]] = []

    def note(self, kind: str, key: str) -> None:
        """Add ``(kind, key)`` to this process's pending list (durably) before the record changes."""
        self._path(kind, key)
        with write_errors_reported(self.dir):
            self.pending_dir.mkdir(parents=True, exist_ok=True)
            self._append_pending(kind, key)
        self.pending.append((kind, key))

    def _append_pending(self, kind: str, key: str) -> None:
        with open(self.pending_dir / str(os.getpid()), "a", encoding="utf-8") as handle:
            handle.write(json.dumps([kind, key], ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def clear_pending(self) -> None:
        """Forget this process's pending list (once every key in it is settled)."""
        (self.pending_dir / str(os.getpid())).unlink(missing_ok=True)
        self.pending = []

    def orphaned_pending(self, alive: Callable[[int], bool]) -> Iterator[tuple[Path, list[tuple[str, str]]]]:
        """Pending lists that processes which are gone left behind, with their keys."""
        if not self.pending_dir.is_dir():
            return
        for path in sorted(self.pending_dir.iterdir()):
            if not path.name.isdigit() or alive(int(path.name)):
                continue
            entries = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    kind, key = json.loads(line)
                except (ValueError, TypeError):
                    continue  # the line a crash cut short: its record file was never written
                if kind in KINDS:
                    entries.append((str(kind), str(key)))
            yield path, entries

    def _path(self, kind: str, key: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        return self.dir / kind / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:40] + ".json")

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        """Write the record ``key`` of ``kind`` (replacing its previous state) durably; notes it pending first."""
        if (kind, key) not in self.pending:
            self.note(kind, key)
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps({"kind": kind, "key": key, "record": payload}, sort_keys=True, ensure_ascii=False)
        try:
            with write_errors_reported(self.dir, len(data)), open(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)

    def delete(self, kind: str, key: str) -> None:
        """Remove the record file of ``key`` (once the index no longer has the record)."""
        self._path(kind, key).unlink(missing_ok=True)

    def complete(self) -> bool:
        """Whether the journal holds every record (false for a library older than the journal)."""
        return (self.dir / COMPLETE).is_file()

    def mark_complete(self) -> None:
        """Note that every record of the index is now in the journal."""
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
