"""The SQLite index: schema, migrations and transactions.

WAL journal, foreign keys on, one ``BEGIN IMMEDIATE`` transaction per library operation, a
busy timeout so that concurrent writers queue instead of failing. The schema version is
SQLite's ``user_version``; :data:`MIGRATIONS` brings any older index up to date.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tts_host.errors import TTSHostError

BUSY_TIMEOUT_S = 120.0

SCHEMA_V1 = """
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    st_size INTEGER,
    st_mtime_ns INTEGER,
    st_ino INTEGER
);
CREATE TABLE leases (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    pid INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX leases_sha256 ON leases(sha256);
CREATE TABLE manifests (id INTEGER PRIMARY KEY);
CREATE TABLE manifest_files (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    size INTEGER NOT NULL,
    PRIMARY KEY (manifest_id, role),
    UNIQUE (manifest_id, path)
);
CREATE INDEX manifest_files_sha256 ON manifest_files(sha256);
CREATE TABLE bases (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    manifest_id INTEGER NOT NULL REFERENCES manifests(id),
    architecture TEXT NOT NULL,
    digest TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    base_id INTEGER NOT NULL REFERENCES bases(id),
    parent_id INTEGER REFERENCES checkpoints(id),
    speakers TEXT NOT NULL,
    training_config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    manifest_id INTEGER NOT NULL REFERENCES manifests(id),
    created REAL NOT NULL
);
CREATE INDEX checkpoints_parent ON checkpoints(parent_id);
CREATE TABLE voices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    base_id INTEGER NOT NULL REFERENCES bases(id),
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    manifest_id INTEGER NOT NULL REFERENCES manifests(id),
    language TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX voices_backend ON voices(backend);
"""

# MIGRATIONS[i] takes the schema from version i to version i + 1.
MIGRATIONS: list[str] = [SCHEMA_V1]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the index at ``path``; autocommit mode, explicit transactions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        migrate(conn, path)
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations in one transaction; refuse an index newer than this code."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise TTSHostError(
                f"library index {path} has schema version {version}; this tts-host understands up to "
                f"{SCHEMA_VERSION}: upgrade tts-host"
            )
        for script in MIGRATIONS[version:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# SQLite's primary result codes that mean the index file itself is not a sound database.
DAMAGED_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
FULL_CODES = {13}  # SQLITE_FULL


def error_kind(exc: sqlite3.Error) -> str:
    """``damaged``, ``full`` or ``other``, from SQLite's result code (its message on Python 3.10)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        return "damaged" if primary in DAMAGED_CODES else "full" if primary in FULL_CODES else "other"
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text:
        return "damaged"
    return "full" if "disk is full" in text else "other"


def index_file(conn: sqlite3.Connection) -> str:
    """The file of ``conn``'s main database."""
    return next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "the index")


def _full_error(conn: sqlite3.Connection, exc: sqlite3.Error) -> TTSHostError:
    from tts_host.oserrors import WriteError, free_space

    path = Path(index_file(conn))
    free = free_space(path)
    shown = f"; {free / 1e6:.1f} MB free there" if free is not None else ""
    return WriteError(f"cannot write {path}: the disk is full ({exc}{shown})")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception; a full disk is one :class:`WriteError` line."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:  # SQLite may have rolled back by itself (a full disk does that)
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and error_kind(exc) == "full":
            raise _full_error(conn, exc) from exc
        raise
