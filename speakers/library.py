"""The :class:`Library`: bases, checkpoints and voices over the blob store and the index.

Open it with ``Library()`` (``$TTS_HOST_HOME``, default the user data directory) or
``Library(home)``. Every operation is one SQLite transaction; files are staged into the
blob store first, protected by leases that ``gc`` respects, and referenced by records only
once they are whole on disk. A crash at any point leaves the previous state.

Typical use by a backend::

    lib = Library()
    base = lib.add_base(backend, folder, "xtts-v2")               # validated, deduplicated
    start = lib.validate_for_finetune(base, dest=work / "start")   # re-hash, protected, schema
    ckpt = lib.add_checkpoint(backend, base, None, ["alice"], {"gpt": work / "gpt.safetensors"},
                              training_config={...}, metrics={"loss": 1.2})
    lib.add_voice("alice", backend, ckpt, {"speaker_embedding": emb}, [clip], language="en")
    lib.materialise(lib.voice("alice"), out_dir)                   # exact upstream layout
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, Union

from tts_host.errors import TTSHostError, ValidationError
from tts_host.speakers import db
from tts_host.speakers.blobs import BlobStore, StagedBlob, link_or_copy
from tts_host.speakers.hashing import parallel_map, sha256_file
from tts_host.speakers.home import default_home
from tts_host.speakers.index_health import integrity_problems, open_index
from tts_host.speakers.journal import RecordJournal
from tts_host.speakers.names import check_name
from tts_host.speakers.records import (
    Base,
    Checkpoint,
    FileEntry,
    Voice,
    check_relative_path,
    manifest_digest,
)
from tts_host.speakers.snapshots import journal_everything, journal_record, settle

if TYPE_CHECKING:
    import numpy as np

    from tts_host.backend import Backend
    from tts_host.host import PluginHost

CONDITIONING_ROLE = "conditioning"
CONDITIONING_PATH = "conditioning.safetensors"
VOICE_DIR = "voice"  # where a voice's own files go when it is materialised

Model = Union[Base, Checkpoint]
Record = Union[Base, Checkpoint, Voice]
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """A blob that failed verification, and who uses it."""

    sha256: str
    size: int
    reason: str
    files: tuple[str, ...] = ()
    voices: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for the user: which files and voices, and what is wrong."""
        users = "; ".join(self.files) or "no record"
        shown = ", ".join(f"'{v}'" for v in self.voices[:5])
        if len(self.voices) > 5:
            shown += f" and {len(self.voices) - 5} more"
        voices = f" (voices: {shown})" if self.voices else ""
        return f"{users}{voices}: {self.reason}"


@dataclass
class GcReport:
    """What ``gc`` removed."""

    blobs: int = 0
    bytes: int = 0
    temp_files: int = 0
    leases: int = 0
    unindexed: int = 0  # blobs records use that the index does not know: kept (the index needs `recover`)
    runs: int = 0


@dataclass
class RepairReport:
    """What ``repair`` changed."""

    actions: list[str] = field(default_factory=list)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Library:
    """The voice library under ``home`` (see the module docstring)."""

    def __init__(self, home: Path | str | None = None, *, host: PluginHost | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = self.home / "library"
        self.blobs = BlobStore(self.root)
        self.journal = RecordJournal(self.root)
        self.conn = open_index(self.root)
        if not self.journal.complete():
            with db.transaction(self.conn) as conn:
                journal_everything(self.journal, conn)
                self.journal.mark_complete()
        for path, entries in self.journal.orphaned_pending(_pid_alive):
            with self._transaction() as conn:
                settle(self.journal, conn, entries)
            path.unlink(missing_ok=True)
        self._host = host
        self._backends: dict[str, Backend] = {}

    def close(self) -> None:
        """Close the index."""
        self.conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; afterwards (committed or not) the journal is settled against the index."""
        try:
            with db.transaction(self.conn) as conn:
                yield conn
        finally:
            if self.journal.pending:
                settle(self.journal, self.conn, self.journal.pending)
                self.journal.clear_pending()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends ------------------------------------------------------------------------
    def backend(self, backend: Backend | str) -> Backend:
        """A backend object: ``backend`` itself, or the installed backend of that name."""
        if not isinstance(backend, str):
            return backend
        if backend not in self._backends:
            if self._host is None:
                from tts_host.host import get_host

                self._host = get_host()
            self._backends[backend] = self._host.build_backend(backend)
        return self._backends[backend]

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

    def blob_path(self, sha256: str) -> Path:
        """The read-only file of blob ``sha256``."""
        return self.blobs.path(sha256)

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

    def add_base(self, backend: Backend | str, folder: Path | str, name: str | None = None) -> Base:
        """Import a base model folder: the backend's roles are hashed into blobs, then validated.

        Re-adding the same files under the same name returns the existing base, and on the
        way re-supplies any of its blobs that were damaged.
        """
        backend = self.backend(backend)
        folder = Path(folder)
        if not folder.is_dir():
            raise TTSHostError(f"base folder {folder} does not exist or is not a folder")
        name = check_name(name or folder.resolve().name, "base")
        paths: dict[str, Path] = {}
        for role in backend.file_roles():
            path = folder / check_relative_path(role.path, f"backend '{backend.name}' role '{role.role}'")
            if path.is_file():
                paths[role.role] = path
            elif role.required:
                raise ValidationError(role.path, f"a file (required by backend '{backend.name}')", "missing",
                                      subject=f"base folder {folder}")
        architecture = backend.architecture(folder)
        backend.validate(folder, architecture)
        json.dumps(architecture)  # must be JSON-able
        staged = self._stage_files(paths)
        files = tuple(
            FileEntry(role, backend.role(role).path, blob.sha256, blob.size) for role, blob in staged.items()
        )
        digest = manifest_digest(files)

        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT id, backend, digest FROM bases WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if row["digest"] == digest and row["backend"] == backend.name:
                    return row["id"]
                raise TTSHostError(f"a different base named '{name}' is already in the library: choose another --name")
            manifest_id = self._insert_manifest(conn, files)
            base_id = conn.execute(
                "INSERT INTO bases (name, backend, manifest_id, architecture, digest, created) VALUES (?, ?, ?, ?, ?, ?)",
                (name, backend.name, manifest_id, json.dumps(architecture, sort_keys=True), digest, time.time()),
            ).lastrowid
            journal_record(self.journal, conn, "bases", base_id)
            return base_id

        return self.base_by_id(self._store(list(staged.values()), write))

    def init_base(self, backend: Backend | str, preset: str, name: str | None = None, *, seed: int = 0) -> Base:
        """Build a base with the backend's ``init_base`` (random weights) and add it."""
        backend = self.backend(backend)
        if preset not in backend.presets():
            raise TTSHostError(
                f"backend '{backend.name}' has no preset '{preset}' (presets: {', '.join(backend.presets()) or 'none'})"
            )
        name = check_name(name or f"{backend.name}-{preset}", "base")
        with tempfile.TemporaryDirectory(dir=self.blobs.tmp_dir, prefix=f"{os.getpid()}-init-") as tmp:
            folder = backend.init_base(preset, Path(tmp) / name, seed=seed)
            return self.add_base(backend, folder, name)

    def remove_base(self, name: str) -> None:
        """Remove a base; refused while any checkpoint or voice depends on it."""
        base = self.base(name)
        with self._transaction() as conn:
            self.journal.note("bases", base.name)
            checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE base_id = ?", (base.id,)).fetchone()[0]
            voices = [r[0] for r in conn.execute("SELECT name FROM voices WHERE base_id = ? ORDER BY name", (base.id,))]
            if checkpoints or voices:
                shown = ", ".join(f"'{v}'" for v in voices[:5]) + (" ..." if len(voices) > 5 else "")
                raise TTSHostError(
                    f"base '{name}' is still used by {checkpoints} checkpoint(s) and {len(voices)} voice(s)"
                    + (f" ({shown})" if voices else "") + ": remove those first"
                )
            manifest_id = conn.execute("SELECT manifest_id FROM bases WHERE id = ?", (base.id,)).fetchone()[0]
            conn.execute("DELETE FROM bases WHERE id = ?", (base.id,))
            conn.execute("DELETE FROM manifests WHERE id = ?", (manifest_id,))

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

    def add_checkpoint(
        self,
        backend: Backend | str,
        base: Base | str,
        parent: Checkpoint | int | None,
        speakers: Sequence[str],
        files: Mapping[str, Path | str],
        training_config: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        *,
        uid: str | None = None,
    ) -> Checkpoint:
        """Record a fine-tuned checkpoint.

        ``files`` maps role -> file for what the fine-tune produced; every other role is
        inherited from ``parent`` (or the base), so protected files stay the base's blobs.
        The record is not validated here (models made by other tools may be imported as
        they are); :meth:`validate_for_finetune` checks it before it is trained on.
        """
        backend = self.backend(backend)
        base = self.base(base) if isinstance(base, str) else base
        if base.backend != backend.name:
            raise TTSHostError(f"{base.label} belongs to backend '{base.backend}', not '{backend.name}'")
        if isinstance(parent, int):
            parent = self.checkpoint(parent)
        if parent is not None and parent.base_id != base.id:
            raise TTSHostError(f"{parent.label} was trained from base '{parent.base_name}', not '{base.name}'")
        speakers = [check_name(s, "speaker") for s in speakers]
        roles = {r.role: r for r in backend.file_roles()}
        for role, path in files.items():
            if role not in roles:
                raise TTSHostError(f"backend '{backend.name}' has no file role '{role}' (roles: {', '.join(roles)})")
            if not Path(path).is_file():
                raise TTSHostError(f"checkpoint file {path} (role '{role}') does not exist")
        inherited = {f.role: f for f in (parent.files if parent else base.files)}
        missing = [r for r in roles.values() if r.required and r.role not in files and r.role not in inherited]
        if missing:
            raise ValidationError(missing[0].path, f"a file for required role '{missing[0].role}'", "none given or inherited",
                                  subject="new checkpoint")
        config = json.dumps(dict(training_config or {}), sort_keys=True, default=str)
        scores = json.dumps(dict(metrics or {}), sort_keys=True, default=str)
        staged = self._stage_files({role: Path(path) for role, path in files.items()})
        for role, blob in staged.items():
            inherited[role] = FileEntry(role, check_relative_path(roles[role].path, role), blob.sha256, blob.size)

        def write(conn: sqlite3.Connection) -> int:
            manifest_id = self._insert_manifest(conn, inherited.values())
            checkpoint_id = conn.execute(
                "INSERT INTO checkpoints (uid, backend, base_id, parent_id, speakers, training_config, metrics,"
                " manifest_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uid or uuid.uuid4().hex, backend.name, base.id, parent.id if parent else None, json.dumps(speakers),
                 config, scores, manifest_id, time.time()),
            ).lastrowid
            journal_record(self.journal, conn, "checkpoints", checkpoint_id)
            return checkpoint_id

        return self.checkpoint(self._store(list(staged.values()), write))

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

    def add_voice(
        self,
        name: str,
        backend: Backend | str,
        model: Model,
        conditioning: Mapping[str, np.ndarray] | None = None,
        references: Sequence[Path | str] = (),
        language: str | None = None,
        notes: str = "",
    ) -> Voice:
        """Add a voice speaking with ``model`` (a base or a checkpoint).

        ``conditioning`` arrays are stored as one safetensors blob; ``references`` are
        stored as blobs too. The voice appears whole or not at all.
        """
        name = check_name(name, "voice")
        backend_name = backend if isinstance(backend, str) else backend.name
        if model.backend != backend_name:
            raise TTSHostError(f"{model.label} belongs to backend '{model.backend}', not '{backend_name}'")
        if self.conn.execute("SELECT 1 FROM voices WHERE name = ?", (name,)).fetchone():
            raise TTSHostError(f"a voice named '{name}' already exists (rename or remove it first)")
        refs = [Path(p) for p in references]
        for ref in refs:
            if not ref.is_file():
                raise TTSHostError(f"reference clip {ref} does not exist or is not a file")
        staged: dict[str, StagedBlob] = {}
        paths: dict[str, str] = {}
        try:
            if conditioning:
                staged[CONDITIONING_ROLE] = self.blobs.stage_bytes(_safetensors_bytes(conditioning))
                paths[CONDITIONING_ROLE] = CONDITIONING_PATH
            for index, ref in enumerate(refs):
                suffix = ref.suffix.lower() if ref.suffix[1:].isalnum() else ".bin"
                role = f"reference:{index}"
                staged[role] = self.blobs.stage_file(ref)
                paths[role] = f"references/{index:02d}{suffix}"
        except BaseException:
            for blob in staged.values():
                self.blobs.discard(blob)
            raise
        files = [FileEntry(role, paths[role], blob.sha256, blob.size) for role, blob in staged.items()]
        base_id = model.id if isinstance(model, Base) else model.base_id
        checkpoint_id = model.id if isinstance(model, Checkpoint) else None

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM voices WHERE name = ?", (name,)).fetchone():
                raise TTSHostError(f"a voice named '{name}' already exists (rename or remove it first)")
            manifest_id = self._insert_manifest(conn, files)
            voice_id = conn.execute(
                "INSERT INTO voices (name, backend, base_id, checkpoint_id, manifest_id, language, notes, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, backend_name, base_id, checkpoint_id, manifest_id, language, notes, time.time()),
            ).lastrowid
            journal_record(self.journal, conn, "voices", voice_id)

        self._store(list(staged.values()), write)
        return self.voice(name)

    def clone_voice(
        self,
        name: str,
        backend: Backend | str,
        model: Model,
        references: Sequence[Path | str],
        language: str | None = None,
        notes: str = "",
    ) -> Voice:
        """Zero-shot clone: the backend computes conditioning from ``references`` with ``model``."""
        name = check_name(name, "voice")
        backend = self.backend(backend)
        if not references:
            raise TTSHostError("cloning a voice needs at least one reference clip (--ref)")
        for ref in references:
            if not Path(ref).is_file():
                raise TTSHostError(f"reference clip {ref} does not exist or is not a file")
        with self.materialised(model) as folder:
            conditioning = backend.conditioning(folder, [Path(r) for r in references])
        return self.add_voice(name, backend, model, conditioning, references, language, notes)

    def set_voice_model(self, name: str, model: Model, conditioning: Mapping[str, np.ndarray] | None = None) -> Voice:
        """Move voice ``name`` to another model of the same base (e.g. a later sequential fine-tune).

        ``conditioning``, when given, replaces the stored arrays; the reference clips stay.
        """
        voice = self.voice(name)
        base_id = model.id if isinstance(model, Base) else model.base_id
        if base_id != voice.base_id or model.backend != voice.backend:
            raise TTSHostError(f"{voice.label} speaks with base '{voice.base_name}' ({voice.backend}); "
                               f"{model.label} is not a model of that base")
        staged = [self.blobs.stage_bytes(_safetensors_bytes(conditioning))] if conditioning else []
        files = [f for f in voice.files if not (conditioning and f.role == CONDITIONING_ROLE)]
        files += [FileEntry(CONDITIONING_ROLE, CONDITIONING_PATH, b.sha256, b.size) for b in staged]
        checkpoint_id = model.id if isinstance(model, Checkpoint) else None

        def write(conn: sqlite3.Connection) -> None:
            old = conn.execute("SELECT manifest_id FROM voices WHERE id = ?", (voice.id,)).fetchone()[0]
            manifest_id = self._insert_manifest(conn, files)
            conn.execute("UPDATE voices SET checkpoint_id = ?, manifest_id = ? WHERE id = ?",
                         (checkpoint_id, manifest_id, voice.id))
            conn.execute("DELETE FROM manifests WHERE id = ?", (old,))
            journal_record(self.journal, conn, "voices", voice.id)

        self._store(staged, write)
        return self.voice(voice.name)

    def voice_conditioning(self, voice: Voice) -> dict[str, np.ndarray]:
        """The conditioning arrays stored with a voice (empty when it has none)."""
        entry = next((f for f in voice.files if f.role == CONDITIONING_ROLE), None)
        if entry is None:
            return {}
        from safetensors.numpy import load_file

        return load_file(str(self.blob_path(entry.sha256)))

    def rename_voice(self, old: str, new: str) -> Voice:
        """Give a voice a new name."""
        new = check_name(new, "voice")
        voice = self.voice(old)
        with self._transaction() as conn:
            self.journal.note("voices", voice.name)
            if conn.execute("SELECT 1 FROM voices WHERE name = ?", (new,)).fetchone():
                raise TTSHostError(f"a voice named '{new}' already exists")
            conn.execute("UPDATE voices SET name = ? WHERE id = ?", (new, voice.id))
            journal_record(self.journal, conn, "voices", voice.id)
        return self.voice(new)

    def remove_voice(self, name: str) -> None:
        """Remove a voice record; its blobs go at the next ``gc`` unless something else uses them."""
        voice = self.voice(name)
        with self._transaction() as conn:
            self.journal.note("voices", voice.name)
            manifest_id = conn.execute("SELECT manifest_id FROM voices WHERE id = ?", (voice.id,)).fetchone()[0]
            conn.execute("DELETE FROM voices WHERE id = ?", (voice.id,))
            conn.execute("DELETE FROM manifests WHERE id = ?", (manifest_id,))

    # -- materialising -------------------------------------------------------------------
    def files_of(self, record: Record) -> list[FileEntry]:
        """The files :meth:`materialise` writes for ``record`` (a voice's own files under ``voice/``)."""
        if isinstance(record, Voice):
            model_files = list(self.model_of(record).files)
            own = [FileEntry(f.role, f"{VOICE_DIR}/{f.path}", f.sha256, f.size) for f in record.files]
            return model_files + own
        return list(record.files)

    def materialise(self, record: Record, dest: Path | str) -> Path:
        """Write ``record``'s model folder to ``dest`` (hard links where possible, else copies).

        ``dest`` must be missing or empty. The files are the library's read-only blobs: write
        new results elsewhere and add them with :meth:`add_checkpoint`.
        """
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise TTSHostError(f"cannot materialise {record.label} into {dest}: it exists and is not an empty folder")
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for entry in self.files_of(record):
                blob = self.blob_path(entry.sha256)
                if not blob.is_file():
                    raise TTSHostError(f"{record.label}: file {entry.path} is missing from the blob store (run `tts-host voices verify`)")
                link_or_copy(blob, dest / check_relative_path(entry.path, record.label))
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                for child in dest.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            raise
        return dest

    @contextmanager
    def materialised(self, record: Record) -> Iterator[Path]:
        """A temporary materialised folder of ``record``, removed afterwards."""
        with tempfile.TemporaryDirectory(dir=self.blobs.tmp_dir, prefix=f"{os.getpid()}-model-") as tmp:
            yield self.materialise(record, Path(tmp) / "model")

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

    def _rehash(self, entry: FileEntry) -> tuple[str, int] | None:
        path = self.blob_path(entry.sha256)
        try:
            return sha256_file(path)
        except FileNotFoundError:
            return None

    def validate_for_finetune(self, start: Record | str, dest: Path | str | None = None,
                              backend: Backend | str | None = None) -> Model:
        """Check a starting point before training on it; returns its model (base or checkpoint).

        Re-hashes every file, checks that protected roles are the base's exact blobs and that
        required roles are present, then materialises the model (into ``dest`` when given,
        else a temporary folder) and runs the backend's schema check. The first failure
        raises :class:`ValidationError` naming the file, the expected and the actual value.
        """
        record = self.resolve(start)
        model = self.model_of(record) if isinstance(record, Voice) else record
        base = model if isinstance(model, Base) else self.base_by_id(model.base_id)
        subject = record.label if record is model else f"{record.label} ({model.label})"
        backend = self.backend(backend or model.backend)
        files = self.files_of(record)
        for entry, actual in zip(files, parallel_map(self._rehash, files)):
            expected = f"sha256 {entry.sha256[:16]} ({entry.size} bytes)"
            if actual is None:
                raise ValidationError(entry.path, expected, "the blob is missing from the library", subject=subject)
            if actual != (entry.sha256, entry.size):
                raise ValidationError(entry.path, expected, f"sha256 {actual[0][:16]} ({actual[1]} bytes): the blob is damaged",
                                      subject=subject)
        by_role = {f.role: f for f in model.files}
        base_roles = {f.role: f for f in base.files}
        declared = {r.role: r for r in backend.file_roles()}
        for entry in model.files:
            if entry.role not in declared:
                raise ValidationError(entry.path, f"a role of backend '{backend.name}' ({', '.join(declared)})",
                                      f"role '{entry.role}'", subject=subject)
        for role in declared.values():
            entry = by_role.get(role.role)
            if entry is None:
                if role.required:
                    raise ValidationError(role.path, f"a file for required role '{role.role}'", "none", subject=subject)
                continue
            if role.protected and model is not base:
                original = base_roles.get(role.role)
                if original is None or original.sha256 != entry.sha256:
                    want = f"the {base.label} file, sha256 {original.sha256[:16]}" if original else "no such file (the base has none)"
                    raise ValidationError(entry.path, f"{want} (protected)",
                                          f"sha256 {entry.sha256[:16]}: run `tts-host voices repair` to restore it",
                                          subject=subject)
        if dest is not None:
            self._schema_check(backend, model, base, self.materialise(model, dest), subject)
        else:
            with self.materialised(model) as folder:
                self._schema_check(backend, model, base, folder, subject)
        return model

    @staticmethod
    def _schema_check(backend: Backend, model: Model, base: Base, folder: Path, subject: str) -> None:
        try:
            backend.validate(folder, base.architecture)
        except ValidationError as exc:
            if exc.subject:
                raise
            raise ValidationError(exc.file, exc.expected, exc.actual, subject=subject) from exc

    # -- integrity -----------------------------------------------------------------------
    def _scope_shas(self, record: Record) -> set[str]:
        shas = {f.sha256 for f in self.files_of(record)}
        model = self.model_of(record) if isinstance(record, Voice) else record
        if not isinstance(model, Base):
            shas |= {f.sha256 for f in self.base_by_id(model.base_id).files}
        return shas

    def verify(self, scope: Record | str | None = None, *, deep: bool = False) -> list[Problem]:
        """Check blobs (all, or those of one record); returns the problems found.

        The fast path trusts a blob whose size, mtime and inode match the stat cache and
        re-hashes the rest; ``deep`` re-hashes everything (both cores when there are
        several files). A damaged blob's cache entry is cleared, so re-adding a good copy
        replaces it.
        """
        rows = self.conn.execute("SELECT sha256, size, st_size, st_mtime_ns, st_ino FROM blobs").fetchall()
        if scope is not None:
            wanted = self._scope_shas(self.resolve(scope))
            rows = [r for r in rows if r["sha256"] in wanted]
        bad: dict[str, str] = {}
        rehash: list[sqlite3.Row] = []
        for row in rows:
            try:
                st = os.stat(self.blob_path(row["sha256"]))
            except FileNotFoundError:
                bad[row["sha256"]] = "the blob is missing"
                continue
            cached = (row["st_size"], row["st_mtime_ns"], row["st_ino"])
            if deep or cached != (st.st_size, st.st_mtime_ns, st.st_ino) or st.st_size != row["size"]:
                rehash.append(row)
        good: list[str] = []
        for row, actual in zip(rehash, parallel_map(lambda r: sha256_file(self.blob_path(r["sha256"])), rehash)):
            if actual == (row["sha256"], row["size"]):
                good.append(row["sha256"])
            else:
                bad[row["sha256"]] = (f"damaged: expected {row['size']} bytes with sha256 {row['sha256'][:16]}, "
                                      f"found {actual[1]} bytes with sha256 {actual[0][:16]}")
        if not good and not bad:
            return []
        with db.transaction(self.conn) as conn:
            for sha in good:
                self._record_stat(conn, sha)
            conn.executemany("UPDATE blobs SET st_size = NULL, st_mtime_ns = NULL, st_ino = NULL WHERE sha256 = ?",
                             [(sha,) for sha in bad])
        sizes = {r["sha256"]: r["size"] for r in rows}
        return [self._problem(sha, sizes[sha], reason) for sha, reason in sorted(bad.items())]

    def _problem(self, sha256: str, size: int, reason: str) -> Problem:
        files: list[str] = []
        voices: set[str] = set()
        rows = self.conn.execute(
            "SELECT mf.path, b.id AS base_id, b.name AS base, c.id AS ckpt, v.name AS voice FROM manifest_files mf "
            "LEFT JOIN bases b ON b.manifest_id = mf.manifest_id "
            "LEFT JOIN checkpoints c ON c.manifest_id = mf.manifest_id "
            "LEFT JOIN voices v ON v.manifest_id = mf.manifest_id WHERE mf.sha256 = ?",
            (sha256,),
        ).fetchall()
        for r in rows:
            if r["voice"] is not None:
                files.append(f"voice '{r['voice']}' file {r['path']}")
                voices.add(r["voice"])
            elif r["base"] is not None:
                files.append(f"base '{r['base']}' file {r['path']}")
                voices |= {v[0] for v in self.conn.execute(
                    "SELECT name FROM voices WHERE base_id = ? AND checkpoint_id IS NULL", (r["base_id"],))}
            elif r["ckpt"] is not None:
                files.append(f"checkpoint {r['ckpt']} file {r['path']}")
                voices |= {v[0] for v in self.conn.execute("SELECT name FROM voices WHERE checkpoint_id = ?", (r["ckpt"],))}
        return Problem(sha256, size, reason, tuple(files), tuple(sorted(voices)))

    def repair(self, name: str, sources: Sequence[Path | str] = ()) -> RepairReport:
        """Repair voice ``name``: restore protected files from the base, re-supply damaged blobs.

        Damaged blobs are replaced from any file under ``sources`` with the same hash. If a
        damaged blob has no intact copy, nothing changes and the error names the file to supply.
        """
        voice = self.voice(name)
        model = self.model_of(voice)
        report = RepairReport()
        fixes: list[tuple[int, FileEntry, FileEntry]] = []
        if isinstance(model, Checkpoint):
            base = self.base_by_id(model.base_id)
            base_roles = {f.role: f for f in base.files}
            backend = self.backend(model.backend)
            manifest_id = self.conn.execute("SELECT manifest_id FROM checkpoints WHERE id = ?", (model.id,)).fetchone()[0]
            for entry in model.files:
                original = base_roles.get(entry.role)
                role = next((r for r in backend.file_roles() if r.role == entry.role), None)
                if role is not None and role.protected and original is not None and original.sha256 != entry.sha256:
                    fixes.append((manifest_id, entry, original))
        problems = self.verify(voice, deep=True)
        supply = _find_sources(sources, {p.sha256: p.size for p in problems})
        replaced = {entry.sha256 for _, entry, _ in fixes}
        missing = [p for p in problems if p.sha256 not in supply and p.sha256 not in replaced]
        if missing:
            first = missing[0]
            raise TTSHostError(
                f"cannot repair voice '{name}': {first.line()}; no intact copy is known. Supply a file with sha256 "
                f"{first.sha256} ({first.size} bytes) with `--source DIR`, or re-add the original base folder "
                f"with `tts-host base add`"
            )
        staged = self._stage_files({sha: path for sha, path in supply.items()})
        for sha, blob in staged.items():
            if blob.sha256 != sha:
                for b in staged.values():
                    self.blobs.discard(b)
                raise TTSHostError(f"source file {supply[sha]} changed while it was read: repair not done")

        def write(conn: sqlite3.Connection) -> None:
            for manifest_id, entry, original in fixes:
                conn.execute(
                    "UPDATE manifest_files SET sha256 = ?, size = ?, path = ? WHERE manifest_id = ? AND role = ?",
                    (original.sha256, original.size, original.path, manifest_id, entry.role),
                )
            if fixes:
                journal_record(self.journal, conn, "checkpoints", model.id)
        self._store(list(staged.values()), write)
        for _, entry, original in fixes:
            report.actions.append(f"{model.label}: {entry.path} restored from the base (protected; "
                                  f"sha256 {entry.sha256[:16]} -> {original.sha256[:16]})")
        for sha in staged:
            report.actions.append(f"blob {sha[:16]} re-supplied from {supply[sha]}")
        return report

    def gc(self, *, runs: bool = False) -> GcReport:
        """Remove blobs no record and no live add refers to, and temp files of dead processes.

        Runs under the index's write lock: an add takes its leases before it commits a blob,
        so a blob that an add in progress needs is never removed. A blob that a record file
        of the journal uses is kept even when the index does not know it. ``runs`` also
        removes the work folders that failed or interrupted fine-tunes left (their saved
        progress included).
        """
        report = GcReport()
        here = socket.gethostname()
        journaled = self._journaled_shas()
        with db.transaction(self.conn) as conn:
            leases = conn.execute("SELECT id, pid, hostname FROM leases").fetchall()
            dead = [r["id"] for r in leases if r["hostname"] == here and not _pid_alive(r["pid"])]
            conn.executemany("DELETE FROM leases WHERE id = ?", [(i,) for i in dead])
            report.leases = len(dead)
            keep = {r[0] for r in conn.execute("SELECT sha256 FROM manifest_files UNION SELECT sha256 FROM leases")}
            for sha, path in self.blobs.on_disk().items():
                if sha in journaled and sha not in keep:
                    report.unindexed += 1
                elif sha not in keep:
                    report.blobs += 1
                    report.bytes += path.stat().st_size
                    path.unlink()
            conn.execute("DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM manifest_files) "
                         "AND sha256 NOT IN (SELECT sha256 FROM leases)")
            for tmp in self.blobs.tmp_dir.iterdir():
                pid = tmp.name.split("-", 1)[0]
                if pid.isdigit() and not _pid_alive(int(pid)):
                    shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
                    report.temp_files += 1
        if runs:
            for leftover in work_leftovers(self.home):
                shutil.rmtree(leftover.path, ignore_errors=True)
                report.runs += 1
        return report

    def _journaled_shas(self) -> set[str]:
        records, _ = self.journal.load()
        return {f["sha256"] for kind in records.values() for record in kind for f in record.get("files", ())}

    def index_problems(self, *, deep: bool = False) -> list[str]:
        """SQLite's check of the index (full with ``deep``) and records the index lacks or has in excess."""
        problems = integrity_problems(self.conn, full=deep)
        if problems:
            return [f"index: {line}" for line in problems]
        records, unreadable = self.journal.load()
        found = [f"record file {line}" for line in unreadable]
        indexed = {
            "bases": {r[0] for r in self.conn.execute("SELECT name FROM bases")},
            "checkpoints": {r[0] for r in self.conn.execute("SELECT uid FROM checkpoints")},
            "voices": {r[0] for r in self.conn.execute("SELECT name FROM voices")},
        }
        keys = {"bases": "name", "checkpoints": "uid", "voices": "name"}
        for kind, rows in records.items():
            journaled = {str(r.get(keys[kind])) for r in rows}
            for key in sorted(journaled - indexed[kind]):
                found.append(f"{kind[:-1]} {key!r} has a record file but is not in the index "
                             "(`tts-host library recover` restores it)")
            for key in sorted(indexed[kind] - journaled):
                found.append(f"{kind[:-1]} {key!r} is in the index but has no record file")
        return found

    def leftovers(self) -> list[Leftover]:
        """Temp files of dead processes and fine-tune work folders: what ``gc`` (``--runs``) removes."""
        found = []
        for tmp in sorted(self.blobs.tmp_dir.iterdir()):
            pid = tmp.name.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                found.append(Leftover(tmp, _bytes_under(tmp), "temp file of a process that is gone"))
        return found + work_leftovers(self.home)

    # -- archives and listings -----------------------------------------------------------
    def export_voice(self, name: str, out: Path | str, *, include_base: bool = True, force: bool = False) -> Path:
        """Write voice ``name`` to a ``.ttsvoice`` archive (with its base's blobs unless told not to).

        A folder ``out`` gets ``<name>.ttsvoice`` inside it; an existing file is replaced only
        with ``force``. Returns the file written.
        """
        from tts_host.speakers.archive import export_voice
        from tts_host.speakers.exporting import archive_target

        voice = self.voice(name)
        return export_voice(self, voice, archive_target(Path(out), voice.name, force), include_base=include_base)

    def export_as(self, name: str, fmt: str, out: Path | str, *, force: bool = False) -> Path:
        """Write voice ``name`` in a format of its backend (every file re-hashed first)."""
        from tts_host.speakers.exporting import export_format

        return export_format(self, name, fmt, Path(out), force=force)

    def import_voice(self, archive: Path | str, as_name: str | None = None) -> Voice:
        """Import a ``.ttsvoice`` archive, every hash checked before anything enters the library."""
        from tts_host.speakers.archive import import_voice

        return import_voice(self, Path(archive), as_name)

    def voice_rows(self, backend: str | None = None) -> list[dict[str, Any]]:
        """A light listing of voices (no manifests): name, backend, base, checkpoint, language, created."""
        from tts_host.speakers.listing import voice_rows

        return voice_rows(self.conn, backend)

    def stored_bytes(self) -> int:
        """Bytes of blob files on disk (each shared file counts once)."""
        return sum(path.stat().st_size for path in self.blobs.on_disk().values())


@dataclass(frozen=True)
class Leftover:
    """A file or folder that no record uses and that ``gc`` can remove."""

    path: Path
    bytes: int
    what: str


def _bytes_under(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def work_leftovers(home: Path) -> list[Leftover]:
    """Folders fine-tunes left under ``home/work/<backend>/`` (a failed or interrupted run's state)."""
    work = home / "work"
    if not work.is_dir():
        return []
    return [Leftover(folder, _bytes_under(folder), "fine-tune work folder (`finetune --resume` continues it)")
            for backend in sorted(work.iterdir()) if backend.is_dir()
            for folder in sorted(backend.iterdir()) if folder.is_dir()]


def _safetensors_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({key: np.ascontiguousarray(value) for key, value in arrays.items()})


def _find_sources(sources: Sequence[Path | str], wanted: Mapping[str, int]) -> dict[str, Path]:
    """Files under ``sources`` whose content has one of the ``wanted`` hashes (sizes checked first)."""
    found: dict[str, Path] = {}
    if not wanted:
        return found
    sizes = set(wanted.values())
    for source in sources:
        source = Path(source)
        candidates = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
        for path in candidates:
            if path.stat().st_size in sizes:
                sha, _ = sha256_file(path)
                if sha in wanted and sha not in found:
                    found[sha] = path
    return found
