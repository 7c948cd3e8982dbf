"""Adding, changing and removing bases, checkpoints and voices (mixed into ``Library``)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from tts_host.errors import TTSHostError, ValidationError
from tts_host.speakers.blobs import StagedBlob
from tts_host.speakers.catalog import LibraryParts
from tts_host.speakers.names import check_name
from tts_host.speakers.records import (
    CONDITIONING_PATH,
    CONDITIONING_ROLE,
    Base,
    Checkpoint,
    FileEntry,
    Model,
    Voice,
    check_relative_path,
    manifest_digest,
)
from tts_host.speakers.snapshots import journal_record

if TYPE_CHECKING:
    import numpy as np
    from tts_host.backend import Backend


@dataclass(frozen=True)
class ImportedCheckpoint:
    """A checkpoint read from a ``.ttsvoice`` archive (its parent named by uid)."""

    uid: str
    backend: str
    parent_uid: str
    speakers: list[str]
    training_config: dict[str, Any]
    metrics: dict[str, Any]
    created: float
    files: tuple[FileEntry, ...]
    earlier_lineage: list[dict[str, Any]]  # kept in the training config when the parent is not in the library


@dataclass(frozen=True)
class ImportedVoice:
    """A voice read from a ``.ttsvoice`` archive, with its base and checkpoint records."""

    name: str
    backend: str
    base_name: str
    base_backend: str
    base_architecture: dict[str, Any]
    base_digest: str
    base_files: tuple[FileEntry, ...]
    checkpoint: ImportedCheckpoint | None
    language: str | None
    notes: str
    created: float
    files: tuple[FileEntry, ...]


class Editing(LibraryParts):
    """Every write of a record: one transaction each, the journal settled after it."""

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
            manifest_id = _still_there(conn, "bases", base.id, base.label)
            conn.execute("DELETE FROM bases WHERE id = ?", (base.id,))
            conn.execute("DELETE FROM manifests WHERE id = ?", (manifest_id,))

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

    def add_voice(
        self,
        name: str,
        backend: Backend | str,
        model: Model,
        conditioning: Mapping[str, np.ndarray] | None = None,
        references: Sequence[Path | str] = (),
        language: str | None = None,
        notes: str = "",
        extra: Mapping[str, tuple[str, Path]] | None = None,
    ) -> Voice:
        """Add a voice speaking with ``model`` (a base or a checkpoint).

        ``conditioning`` arrays are stored as one safetensors blob; ``references`` are
        stored as blobs too, and so are ``extra`` files (role -> (path in the voice, file); e.g. its
        consent record). The voice appears whole or not at all.
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
            for role, (path, source) in (extra or {}).items():
                staged[role] = self.blobs.stage_file(Path(source))
                paths[role] = path
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
            old = _still_there(conn, "voices", voice.id, voice.label)
            manifest_id = self._insert_manifest(conn, files)
            conn.execute("UPDATE voices SET checkpoint_id = ?, manifest_id = ? WHERE id = ?",
                         (checkpoint_id, manifest_id, voice.id))
            conn.execute("DELETE FROM manifests WHERE id = ?", (old,))
            journal_record(self.journal, conn, "voices", voice.id)

        self._store(staged, write)
        return self.voice(voice.name)

    def set_voice_files(self, name: str, files: Mapping[str, tuple[str, Path]], remove: Iterable[str] = ()) -> Voice:
        """Store voice ``name``'s own ``files`` (role -> (path in the voice, file); e.g. its speech settings or
        consent), replacing the files it had in those roles and dropping those in ``remove``: one transaction,
        the voice's other files as they are then."""
        voice = self.voice(name)
        for role, (path, _) in files.items():
            check_relative_path(path, f"voice file role '{role}'")
        staged = {role: (path, self.blobs.stage_file(Path(source))) for role, (path, source) in files.items()}
        entries = [FileEntry(role, path, blob.sha256, blob.size) for role, (path, blob) in staged.items()]
        replaced = set(files) | set(remove)

        def write(conn: sqlite3.Connection) -> None:
            old = _still_there(conn, "voices", voice.id, voice.label)
            kept = [f for f in self._manifest(old) if f.role not in replaced]
            for entry in entries:
                if any(f.path == entry.path for f in kept):
                    raise TTSHostError(f"{voice.label} already has a file at {entry.path} "
                                       f"(role '{entry.role}' cannot go there)")
            manifest_id = self._insert_manifest(conn, [*kept, *entries])
            conn.execute("UPDATE voices SET manifest_id = ? WHERE id = ?", (manifest_id, voice.id))
            conn.execute("DELETE FROM manifests WHERE id = ?", (old,))
            journal_record(self.journal, conn, "voices", voice.id)

        self._store([blob for _, blob in staged.values()], write)
        return self.voice(voice.name)

    def rename_voice(self, old: str, new: str) -> Voice:
        """Give a voice a new name."""
        new = check_name(new, "voice")
        voice = self.voice(old)
        with self._transaction() as conn:
            self.journal.note("voices", voice.name)
            _still_there(conn, "voices", voice.id, voice.label)
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
            manifest_id = _still_there(conn, "voices", voice.id, voice.label)
            conn.execute("DELETE FROM voices WHERE id = ?", (voice.id,))
            conn.execute("DELETE FROM manifests WHERE id = ?", (manifest_id,))

    def add_imported_voice(self, imported: ImportedVoice, staged: Sequence[StagedBlob]) -> Voice:
        """Add an archive's voice, with its base (unless the same content is here) and checkpoint, in one transaction."""

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM bases WHERE digest = ? AND backend = ?",
                               (imported.base_digest, imported.base_backend)).fetchone()
            if row is not None:
                base_id = row[0]
            else:
                manifest_id = self._insert_manifest(conn, imported.base_files)
                base_id = conn.execute(
                    "INSERT INTO bases (name, backend, manifest_id, architecture, digest, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (imported.base_name, imported.base_backend, manifest_id,
                     json.dumps(imported.base_architecture, sort_keys=True), imported.base_digest, time.time()),
                ).lastrowid
                journal_record(self.journal, conn, "bases", base_id)
            checkpoint_id = None
            ckpt = imported.checkpoint
            if ckpt is not None:
                row = conn.execute("SELECT id FROM checkpoints WHERE uid = ?", (ckpt.uid,)).fetchone()
                if row is not None:
                    checkpoint_id = row[0]
                else:
                    parent = conn.execute("SELECT id FROM checkpoints WHERE uid = ?", (ckpt.parent_uid,)).fetchone()
                    config = dict(ckpt.training_config)
                    if parent is None and ckpt.earlier_lineage:
                        config.setdefault("imported_lineage", ckpt.earlier_lineage)
                    manifest_id = self._insert_manifest(conn, ckpt.files)
                    checkpoint_id = conn.execute(
                        "INSERT INTO checkpoints (uid, backend, base_id, parent_id, speakers, training_config, metrics,"
                        " manifest_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (ckpt.uid, ckpt.backend, base_id, parent[0] if parent else None, json.dumps(ckpt.speakers),
                         json.dumps(config, sort_keys=True), json.dumps(ckpt.metrics, sort_keys=True), manifest_id,
                         ckpt.created),
                    ).lastrowid
                    journal_record(self.journal, conn, "checkpoints", checkpoint_id)
            if conn.execute("SELECT 1 FROM voices WHERE name = ?", (imported.name,)).fetchone():
                raise TTSHostError(f"a voice named '{imported.name}' already exists: import with --as NEW_NAME")
            manifest_id = self._insert_manifest(conn, imported.files)
            voice_id = conn.execute(
                "INSERT INTO voices (name, backend, base_id, checkpoint_id, manifest_id, language, notes, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (imported.name, imported.backend, base_id, checkpoint_id, manifest_id, imported.language,
                 imported.notes, imported.created),
            ).lastrowid
            journal_record(self.journal, conn, "voices", voice_id)

        self._store(staged, write)
        return self.voice(imported.name)


def _still_there(conn: sqlite3.Connection, table: str, row_id: int, label: str) -> int:
    """The manifest id of a record, read inside the write transaction; one line if another process removed it."""
    row = conn.execute(f"SELECT manifest_id FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if row is None:
        raise TTSHostError(f"{label} was removed by another process meanwhile")
    return row[0]


def _safetensors_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({key: np.ascontiguousarray(value) for key, value in arrays.items()})
