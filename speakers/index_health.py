"""Opening the index safely: the library fails closed on a missing, empty or damaged index.

A library whose index is gone but whose blobs or record files remain must not look empty:
an empty-looking library would let ``gc`` delete every blob. :func:`open_index` refuses
such an index with one line that says what it found and how to recover
(``tts-host library recover`` rebuilds the index from the record journal and the blobs).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from tts_host.errors import TTSHostError
from tts_host.speakers import db
from tts_host.speakers.blobs import BlobStore
from tts_host.speakers.journal import RecordJournal

RECOVER = "nothing was changed; run `tts-host library recover` to rebuild the index from the blobs and records"


class IndexDamagedError(TTSHostError):
    """The index is missing, empty or damaged while the library holds files."""


def integrity_problems(conn: sqlite3.Connection, *, full: bool = False) -> list[str]:
    """SQLite's own check of the index (``quick_check``, or ``integrity_check`` when ``full``)."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.DatabaseError as exc:
        if db.error_kind(exc) != "damaged":
            raise
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def _open_error(index: Path, exc: sqlite3.Error) -> TTSHostError:
    """The one line for an index that cannot be opened: damaged (recover), full disk, or another cause."""
    kind = db.error_kind(exc)
    if kind == "damaged":
        return IndexDamagedError(f"library index {index} is damaged ({exc}): {RECOVER}")
    if kind == "full":
        from tts_host.oserrors import WriteError

        return WriteError(f"cannot open library index {index}: the disk is full ({exc}); free some space")
    return TTSHostError(f"cannot open library index {index}: {exc}")


def open_index(root: Path) -> sqlite3.Connection:
    """Open the index of the library at ``root``, or raise :class:`IndexDamagedError`."""
    index = root / "index.sqlite"
    journal = RecordJournal(root)
    if index.exists() and not index.is_file():
        raise IndexDamagedError(f"library index {index} is not a file: {RECOVER}")
    if not index.is_file() or index.stat().st_size == 0:
        state = "empty" if index.is_file() else "missing"
        blobs = len(BlobStore(root).on_disk()) if (root / "blobs").is_dir() else 0
        records = journal.count()
        if blobs or records:
            raise IndexDamagedError(f"library index {index} is {state} but the library holds {blobs} file(s) and "
                                    f"{records} record(s): {RECOVER}")
        return db.connect(index)
    try:
        conn = db.connect(index)
        problems = integrity_problems(conn)
        has_bases = not problems and conn.execute("SELECT 1 FROM bases LIMIT 1").fetchone() is not None
    except sqlite3.Error as exc:
        raise _open_error(index, exc) from exc
    if not problems and not has_bases and journal.count():
        conn.close()
        raise IndexDamagedError(f"library index {index} holds no records but {journal.dir} holds "
                                f"{journal.count()}: {RECOVER}")
    if problems:
        conn.close()
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IndexDamagedError(f"library index {index} is damaged (SQLite: {problems[0]}{more}): {RECOVER}")
    return conn


LOCK_FILE = ".lock"


def hold_library_lock(root: Path, *, exclusive: bool = False) -> int:
    """Lock the library at ``root``: shared for every open ``Library``, exclusive for ``recover``.

    Returns the descriptor that holds the lock (closing it releases it). The exclusive lock is
    refused at once, with one line, while any other process has the library open.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if exclusive:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
    except BlockingIOError:
        os.close(fd)
        raise TTSHostError(f"another tts-host process has the library {root} open: let it finish, then run "
                           "this again") from None
    return fd
