"""Checking a starting point before a fine-tune trains on it (mixed into ``Library``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tts_host.errors import TTSHostError, ValidationError
from tts_host.speakers.catalog import LibraryParts
from tts_host.hashing import parallel_map, sha256_file
from tts_host.speakers.records import (
    Base,
    FileEntry,
    Model,
    Record,
    Voice,
)

if TYPE_CHECKING:

    from tts_host.backend import Backend


class Validation(LibraryParts):
    """Re-hash, protected-file and schema checks of a start (a base, checkpoint or voice)."""

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
        self._check_roles(backend, model, base, subject, self._difference(backend))
        if dest is not None:
            self._schema_check(backend, model, base, self.materialise(model, dest), subject)
        else:
            with self.materialised(model) as folder:
                self._schema_check(backend, model, base, folder, subject)
        return model

    def ready_to_speak(self, voice: Voice | str) -> Model:
        """Cheap checks before a voice speaks; returns its model.

        Every file of the voice, its model and base passes the fast integrity check (the stat
        cache: a blob is re-hashed only when its size, mtime or inode changed), and the roles
        are as a fine-tune needs them (required present, protected the base's). ``verify
        --deep`` and :meth:`validate_for_finetune` stay the full re-hash.
        """
        record = self.resolve(voice)
        model = self.model_of(record) if isinstance(record, Voice) else record
        base = model if isinstance(model, Base) else self.base_by_id(model.base_id)
        subject = record.label if record is model else f"{record.label} ({model.label})"
        problems = self.verify(record)
        if problems:
            raise TTSHostError(f"{subject} cannot speak: {problems[0].line()}; `tts-host voices repair` restores it")
        backend = self.backend(model.backend)
        self._check_roles(backend, model, base, subject, self._difference(backend))
        return model

    def protected_changes(self, scope: Record | str | None = None) -> list[str]:
        """One line per protected file of a voice's model (or of every voice's) that is not its base's (voices of a
        backend that is not installed are left out)."""
        records = [self.resolve(scope)] if scope is not None else list(self.voices())
        lines: list[str] = []
        for record in records:
            model = self.model_of(record) if isinstance(record, Voice) else record
            if isinstance(model, Base):
                continue
            base = self.base_by_id(model.base_id)
            try:
                backend = self.backend(model.backend)
            except TTSHostError:
                continue  # which files are protected is the backend's to say: without it, the blob checks remain
            try:
                self._check_roles(backend, model, base, record.label, self._difference(backend))
            except ValidationError as exc:
                if str(exc) not in lines:
                    lines.append(str(exc))
        return lines

    def _difference(self, backend: Backend) -> Callable[[str, FileEntry, FileEntry], str | None]:
        """What the backend says differs between a base's protected file and a changed one (by their blobs)."""
        def describe(role: str, original: FileEntry, changed: FileEntry) -> str | None:
            return backend.protected_difference(role, self.blob_path(original.sha256), self.blob_path(changed.sha256))
        return describe

    @staticmethod
    def _check_roles(backend: Backend, model: Model, base: Base, subject: str,
                     difference: Callable[[str, FileEntry, FileEntry], str | None] | None = None) -> None:
        """Every file has a declared role, required roles are present and protected ones are the base's."""
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
                    changed = difference(role.role, original, entry) if difference and original else None
                    detail = f" ({changed})" if changed else ""
                    raise ValidationError(entry.path, f"{want} (protected)",
                                          f"sha256 {entry.sha256[:16]}{detail}: run `tts-host voices repair` to restore it",
                                          subject=subject)

    @staticmethod
    def _schema_check(backend: Backend, model: Model, base: Base, folder: Path, subject: str) -> None:
        try:
            backend.validate(folder, base.architecture)
        except ValidationError as exc:
            if exc.subject:
                raise
            raise ValidationError(exc.file, exc.expected, exc.actual, subject=subject) from exc

