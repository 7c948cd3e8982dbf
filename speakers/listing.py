"""Light listings straight from the index, for ``voices list``: only sqlite3 is imported."""

from __future__ import annotations

import sqlite3
from typing import Any

_FROM = " FROM voices v JOIN bases b ON b.id = v.base_id"


def _query(conn: sqlite3.Connection, select: str, backend: str | None) -> sqlite3.Cursor:
    sql, args = select + _FROM, ()
    if backend:
        sql, args = sql + " WHERE v.backend = ?", (backend,)
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql + " ORDER BY v.name", args)


def voice_rows(conn: sqlite3.Connection, backend: str | None = None) -> list[dict[str, Any]]:
    """name, backend, base, checkpoint, language, created (epoch seconds) of every voice."""
    keys = ("name", "backend", "base", "checkpoint", "language", "created")
    cursor = _query(conn, "SELECT v.name, v.backend, b.name, v.checkpoint_id, v.language, v.created", backend)
    return [dict(zip(keys, row)) for row in cursor]


def voice_table(conn: sqlite3.Connection, backend: str | None = None) -> list[tuple[str, ...]]:
    """Display strings: name, backend, model, language, created (UTC), formatted by SQLite."""
    return _query(
        conn,
        "SELECT v.name, v.backend, CASE WHEN v.checkpoint_id IS NULL THEN 'base ' || b.name "
        "ELSE 'checkpoint ' || v.checkpoint_id END, COALESCE(v.language, '-'), "
        "strftime('%Y-%m-%d %H:%M:%SZ', v.created, 'unixepoch')",
        backend,
    ).fetchall()
