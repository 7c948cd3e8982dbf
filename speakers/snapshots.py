"""Records as the journal keeps them: plain JSON payloads read from the index.

A base is keyed by its name, a checkpoint by its uid, a voice by its name; references
between records use those keys. Each record also keeps its row id, which a rebuilt index
reuses (users name checkpoints by id).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tts_host.speakers.journal import RecordJournal


def _files(conn: sqlite3.Connection, manifest_id: int) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT role, path, sha256, size FROM manifest_files WHERE manifest_id = ? ORDER BY path",
                        (manifest_id,))
    return [{"role": r[0], "path": r[1], "sha256": r[2], "size": r[3]} for r in rows]


def base_payload(conn: sqlite3.Connection, base_id: int) -> tuple[str, dict[str, Any]]:
    """``(name, payload)`` of base ``base_id``."""
    row = conn.execute("SELECT * FROM bases WHERE id = ?", (base_id,)).fetchone()
    return row["name"], {
        "id": row["id"], "name": row["name"], "backend": row["backend"], "architecture": json.loads(row["architecture"]),
        "digest": row["digest"], "created": row["created"], "files": _files(conn, row["manifest_id"]),
    }


def checkpoint_payload(conn: sqlite3.Connection, checkpoint_id: int) -> tuple[str, dict[str, Any]]:
    """``(uid, payload)`` of checkpoint ``checkpoint_id``."""
    row = conn.execute(
        "SELECT c.*, b.name AS base_name, p.uid AS parent_uid FROM checkpoints c JOIN bases b ON b.id = c.base_id "
        "LEFT JOIN checkpoints p ON p.id = c.parent_id WHERE c.id = ?", (checkpoint_id,)).fetchone()
    return row["uid"], {
        "id": row["id"], "uid": row["uid"], "backend": row["backend"], "base": row["base_name"], "parent_uid": row["parent_uid"],
        "speakers": json.loads(row["speakers"]), "training_config": json.loads(row["training_config"]),
        "metrics": json.loads(row["metrics"]), "created": row["created"], "files": _files(conn, row["manifest_id"]),
    }


def voice_payload(conn: sqlite3.Connection, voice_id: int) -> tuple[str, dict[str, Any]]:
    """``(name, payload)`` of voice ``voice_id``."""
    row = conn.execute(
        "SELECT v.*, b.name AS base_name, c.uid AS checkpoint_uid FROM voices v JOIN bases b ON b.id = v.base_id "
        "LEFT JOIN checkpoints c ON c.id = v.checkpoint_id WHERE v.id = ?", (voice_id,)).fetchone()
    return row["name"], {
        "id": row["id"], "name": row["name"], "backend": row["backend"], "base": row["base_name"],
        "checkpoint_uid": row["checkpoint_uid"], "language": row["language"], "notes": row["notes"],
        "created": row["created"], "files": _files(conn, row["manifest_id"]),
    }


PAYLOADS = {"bases": base_payload, "checkpoints": checkpoint_payload, "voices": voice_payload}


def journal_record(journal: RecordJournal, conn: sqlite3.Connection, kind: str, row_id: int) -> str:
    """Write the current state of one record to the journal; returns its key."""
    key, payload = PAYLOADS[kind](conn, row_id)
    journal.put(kind, key, payload)
    return key


KEY_COLUMNS = {"bases": "name", "checkpoints": "uid", "voices": "name"}


def settle(journal: RecordJournal, conn: sqlite3.Connection, entries: list[tuple[str, str]]) -> None:
    """Make each pending record file match the index: rewritten from it, or removed when it has no such record."""
    for kind, key in dict.fromkeys(entries):
        row = conn.execute(f"SELECT id FROM {kind} WHERE {KEY_COLUMNS[kind]} = ?", (key,)).fetchone()
        if row is None:
            journal.delete(kind, key)
        else:
            journal.put(kind, key, PAYLOADS[kind](conn, row[0])[1])


def journal_everything(journal: RecordJournal, conn: sqlite3.Connection) -> int:
    """Write every record of the index to the journal (for an index older than the journal)."""
    written = 0
    for kind in PAYLOADS:
        for (row_id,) in conn.execute(f"SELECT id FROM {kind}").fetchall():
            journal_record(journal, conn, kind, row_id)
            written += 1
    return written
