"""Putting files into the blob store under leases, then registering them in one transaction."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from tts_host.speakers import db
from tts_host.speakers.blobs import StagedBlob
from tts_host.speakers.catalog import LibraryParts
from tts_host.hashing import sha256_file

T = TypeVar("T")


class BlobWriter(LibraryParts):
    """Staging, leasing and committing blobs for the writes of ``Library`` (mixed into it)."""

    def _cached_stat(self, sha256: str) -> tuple[int, int, int] | None:
        row = self.conn.execute("SELECT st_size, st_mtime_ns, st_ino FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None or row["st_size"] is None else (row["st_size"], row["st_mtime_ns"], row["st_ino"])

    def _is_intact(self, sha256: str, path: Path) -> bool:
        """Fast when the stat cache matches; otherwise re-hash the existing blob."""
        st = path.stat()
        if self._cached_stat(sha256) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return True
        return sha256_file(path)[0] == sha256

    def _record_stat(self, conn: sqlite3.Connection, sha256: str) -> None:
        st = self.blobs.path(sha256).stat()
        conn.execute(
            "UPDATE blobs SET st_size = ?, st_mtime_ns = ?, st_ino = ? WHERE sha256 = ?",
            (st.st_size, st.st_mtime_ns, st.st_ino, sha256),
        )

    def _take_leases(self, shas: Iterable[str]) -> list[int]:
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with db.transaction(self.conn) as conn:
            return [
                conn.execute(
                    "INSERT INTO leases (sha256, pid, hostname, created) VALUES (?, ?, ?, ?)", (sha, pid, host, now)
                ).lastrowid
                for sha in shas
            ]

    def _release_leases(self, conn: sqlite3.Connection, ids: list[int]) -> None:
        conn.executemany("DELETE FROM leases WHERE id = ?", [(i,) for i in ids])

    def _store(self, staged: Sequence[StagedBlob], write: Callable[[sqlite3.Connection], T]) -> T:
        """Commit staged blobs under leases, then run ``write`` in the same transaction that registers them."""
        lease_ids: list[int] = []
        try:
            lease_ids = self._take_leases(s.sha256 for s in staged)
            written = [self.blobs.commit(s, self._is_intact) for s in staged]
            with self._transaction() as conn:
                for blob, fresh in zip(staged, written):
                    conn.execute("INSERT OR IGNORE INTO blobs (sha256, size) VALUES (?, ?)", (blob.sha256, blob.size))
                    if fresh:
                        self._record_stat(conn, blob.sha256)
                result = write(conn)
                self._release_leases(conn, lease_ids)
            return result
        except BaseException:
            for blob in staged:
                self.blobs.discard(blob)
            if lease_ids:
                try:
                    with db.transaction(self.conn) as conn:
                        self._release_leases(conn, lease_ids)
                except sqlite3.Error:
                    pass  # gc reaps leases of finished processes
            raise

    def _stage_files(self, files: Mapping[str, Path]) -> dict[str, StagedBlob]:
        staged: dict[str, StagedBlob] = {}
        try:
            for key, path in files.items():
                staged[key] = self.blobs.stage_file(Path(path))
        except BaseException:
            for blob in staged.values():
                self.blobs.discard(blob)
            raise
        return staged

