"""Reading the index: bases, checkpoints, voices, their manifests and lineage (mixed into ``Library``)."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from tts_host.errors import TTSHostError
from tts_host.speakers.blobs import BlobStore
from tts_host.speakers.journal import RecordJournal
from tts_host.speakers.records import (
    CONDITIONING_ROLE,
    VOICE_DIR,
    Base,
    Checkpoint,
    FileEntry,
    Model,
    Record,
    Voice,
)

if TYPE_CHECKING:
    import numpy as np



def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None



class LibraryParts:
    """What every part of ``Library`` shares: the home, the index, the blob store and the journal."""

    home: Path
    root: Path
    conn: sqlite3.Connection
    blobs: BlobStore
    journal: RecordJournal


class Catalog(LibraryParts):
    """Look-ups of records by name, id or uid: reads of the index, no writes."""

    # -- manifests and blobs -------------------------------------------------------------
    def _manifest(self, manifest_id: int) -> tuple[FileEntry, ...]:
        rows = self.conn.execute(
            "SELECT role, path, sha256, size FROM manifest_files WHERE manifest_id = ? ORDER BY path", (manifest_id,)
        ).fetchall()
        return tuple(FileEntry(r["role"], r["path"], r["sha256"], r["size"]) for r in rows)

    def _manifests(self, ids: Iterable[int]) -> dict[int, tuple[FileEntry, ...]]:
        wanted = set(ids)
        found: dict[int, list[FileEntry]] = {i: [] for i in wanted}
        if not wanted:
            return {}
        rows = self.conn.execute("SELECT manifest_id, role, path, sha256, size FROM manifest_files ORDER BY path")
        for r in rows:
            if r["manifest_id"] in found:
                found[r["manifest_id"]].append(FileEntry(r["role"], r["path"], r["sha256"], r["size"]))
        return {i: tuple(files) for i, files in found.items()}

    @staticmethod
    def _insert_manifest(conn: sqlite3.Connection, files: Iterable[FileEntry]) -> int:
        manifest_id = conn.execute("INSERT INTO manifests DEFAULT VALUES").lastrowid
        conn.executemany(
            "INSERT INTO manifest_files (manifest_id, role, path, sha256, size) VALUES (?, ?, ?, ?, ?)",
            [(manifest_id, f.role, f.path, f.sha256, f.size) for f in files],
        )
        return manifest_id

    # -- bases ---------------------------------------------------------------------------
    def _base_from_row(self, row: sqlite3.Row, files: tuple[FileEntry, ...] | None = None) -> Base:
        return Base(
            id=row["id"], name=row["name"], backend=row["backend"], architecture=_loads(row["architecture"]) or {},
            files=files if files is not None else self._manifest(row["manifest_id"]), created=row["created"],
            digest=row["digest"],
        )

    def base(self, name: str) -> Base:
        """The base named ``name``, or an error listing the bases."""
        name = unicodedata.normalize("NFC", name)
        row = self.conn.execute("SELECT * FROM bases WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(b.name for b in self.bases()) or "none"
            raise TTSHostError(f"no base named '{name}' in the library (bases: {known})")
        return self._base_from_row(row)

    def base_by_id(self, base_id: int) -> Base:
        """The base with id ``base_id``."""
        row = self.conn.execute("SELECT * FROM bases WHERE id = ?", (base_id,)).fetchone()
        if row is None:
            raise TTSHostError(f"no base with id {base_id} in the library")
        return self._base_from_row(row)

    def bases(self, backend: str | None = None) -> list[Base]:
        """Every base (of one backend), by name."""
        sql, args = "SELECT * FROM bases", ()
        if backend:
            sql, args = sql + " WHERE backend = ?", (backend,)
        rows = self.conn.execute(sql + " ORDER BY name", args).fetchall()
        manifests = self._manifests(r["manifest_id"] for r in rows)
        return [self._base_from_row(r, manifests[r["manifest_id"]]) for r in rows]

    # -- checkpoints ---------------------------------------------------------------------
    def _checkpoint_from_row(self, row: sqlite3.Row) -> Checkpoint:
        base_name = self.conn.execute("SELECT name FROM bases WHERE id = ?", (row["base_id"],)).fetchone()[0]
        return Checkpoint(
            id=row["id"], uid=row["uid"], backend=row["backend"], base_id=row["base_id"], base_name=base_name,
            parent_id=row["parent_id"], speakers=tuple(_loads(row["speakers"]) or ()),
            training_config=_loads(row["training_config"]) or {}, metrics=_loads(row["metrics"]) or {},
            files=self._manifest(row["manifest_id"]), created=row["created"],
        )

    def checkpoint(self, checkpoint_id: int | str) -> Checkpoint:
        """The checkpoint with this id (or uid)."""
        row = self.conn.execute(
            "SELECT * FROM checkpoints WHERE id = ? OR uid = ?", (checkpoint_id, str(checkpoint_id))
        ).fetchone()
        if row is None:
            raise TTSHostError(f"no checkpoint {checkpoint_id} in the library")
        return self._checkpoint_from_row(row)

    def checkpoints(self, base: Base | str | None = None) -> list[Checkpoint]:
        """Every checkpoint (on one base), oldest first."""
        if base is None:
            rows = self.conn.execute("SELECT * FROM checkpoints ORDER BY id").fetchall()
        else:
            base_id = (self.base(base) if isinstance(base, str) else base).id
            rows = self.conn.execute("SELECT * FROM checkpoints WHERE base_id = ? ORDER BY id", (base_id,)).fetchall()
        return [self._checkpoint_from_row(r) for r in rows]

    def lineage(self, checkpoint: Checkpoint | int) -> list[Checkpoint]:
        """The chain of checkpoints from the first fine-tune of the base down to ``checkpoint``."""
        current = self.checkpoint(checkpoint) if isinstance(checkpoint, int) else checkpoint
        chain = [current]
        while current.parent_id is not None:
            current = self.checkpoint(current.parent_id)
            chain.append(current)
        return chain[::-1]

    def descendants(self, checkpoint: Checkpoint | int) -> list[Checkpoint]:
        """Every checkpoint fine-tuned (directly or not) from ``checkpoint``, oldest first."""
        start = checkpoint if isinstance(checkpoint, int) else checkpoint.id
        rows = self.conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM checkpoints WHERE parent_id = ? "
            "UNION SELECT c.id FROM checkpoints c JOIN tree t ON c.parent_id = t.id) "
            "SELECT * FROM checkpoints WHERE id IN (SELECT id FROM tree) ORDER BY id",
            (start,),
        ).fetchall()
        return [self._checkpoint_from_row(r) for r in rows]

    # -- voices --------------------------------------------------------------------------
    def _voice_from_row(self, row: sqlite3.Row, files: tuple[FileEntry, ...] | None = None) -> Voice:
        return Voice(
            id=row["id"], name=row["name"], backend=row["backend"], base_id=row["base_id"],
            base_name=row["base_name"], checkpoint_id=row["checkpoint_id"],
            files=files if files is not None else self._manifest(row["manifest_id"]),
            language=row["language"], notes=row["notes"], created=row["created"],
        )

    _VOICE_SQL = "SELECT v.*, b.name AS base_name FROM voices v JOIN bases b ON b.id = v.base_id"

    def voice(self, name: str) -> Voice:
        """The voice named ``name`` (any Unicode spelling of it: names are stored NFC-normalised)."""
        name = unicodedata.normalize("NFC", name)
        row = self.conn.execute(self._VOICE_SQL + " WHERE v.name = ?", (name,)).fetchone()
        if row is None:
            raise TTSHostError(f"no voice named {name!r} in the library (`tts-host voices list` shows them)")
        return self._voice_from_row(row)

    def voices(self, backend: str | None = None) -> list[Voice]:
        """Every voice (of one backend), by name."""
        sql, args = self._VOICE_SQL, ()
        if backend:
            sql, args = sql + " WHERE v.backend = ?", (backend,)
        rows = self.conn.execute(sql + " ORDER BY v.name", args).fetchall()
        manifests = self._manifests(r["manifest_id"] for r in rows)
        return [self._voice_from_row(r, manifests[r["manifest_id"]]) for r in rows]

    def model_of(self, voice: Voice) -> Model:
        """The checkpoint a voice speaks with, or its base for a zero-shot voice."""
        return self.checkpoint(voice.checkpoint_id) if voice.checkpoint_id is not None else self.base_by_id(voice.base_id)

    def voice_conditioning(self, voice: Voice) -> dict[str, np.ndarray]:
        """The conditioning arrays stored with a voice (empty when it has none)."""
        entry = next((f for f in voice.files if f.role == CONDITIONING_ROLE), None)
        if entry is None:
            return {}
        from safetensors.numpy import load_file

        return load_file(str(self.blob_path(entry.sha256)))

    # -- materialising -------------------------------------------------------------------
    def files_of(self, record: Record) -> list[FileEntry]:
        """The files :meth:`materialise` writes for ``record`` (a voice's own files under ``voice/``)."""
        if isinstance(record, Voice):
            model_files = list(self.model_of(record).files)
            own = [FileEntry(f.role, f"{VOICE_DIR}/{f.path}", f.sha256, f.size) for f in record.files]
            return model_files + own
        return list(record.files)

    # -- validation ----------------------------------------------------------------------
    def resolve(self, ref: Record | str) -> Record:
        """A record from itself or a reference: a voice name, ``base:NAME`` or ``checkpoint:ID``."""
        if not isinstance(ref, str):
            return ref
        kind, _, rest = ref.partition(":")
        if kind == "base" and rest:
            return self.base(rest)
        if kind == "checkpoint" and rest:
            return self.checkpoint(int(rest) if rest.isdigit() else rest)
        return self.voice(ref)

    def has_voice(self, name: str) -> bool:
        """Whether a voice named ``name`` (in any Unicode spelling) exists."""
        name = unicodedata.normalize("NFC", name)
        return self.conn.execute("SELECT 1 FROM voices WHERE name = ?", (name,)).fetchone() is not None

    def has_base(self, name: str) -> bool:
        """Whether a base named ``name`` exists."""
        name = unicodedata.normalize("NFC", name)
        return self.conn.execute("SELECT 1 FROM bases WHERE name = ?", (name,)).fetchone() is not None

    def base_with_content(self, digest: str, backend: str) -> Base | None:
        """The base of ``backend`` whose manifest digest is ``digest``, if the library has one."""
        row = self.conn.execute("SELECT * FROM bases WHERE digest = ? AND backend = ?", (digest, backend)).fetchone()
        return None if row is None else self._base_from_row(row)

    def voice_counts(self) -> dict[int, int]:
        """How many voices speak with each base: ``{base id: count}``."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT base_id, COUNT(*) FROM voices GROUP BY base_id")}
