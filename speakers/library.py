"""The :class:`Library`: bases, checkpoints and voices over the blob store and the index.

Open it with ``Library(host=host)`` (``$TTS_HOST_HOME``, default the user data directory) or
``Library(home, host=host)``: the plugin host gives the backends a record names (without one,
pass ``Backend`` objects). The library runs no model; core's workflows hand it what backends make. Every change of records is one SQLite transaction; files are staged into
the blob store first, protected by leases (taken in a short transaction of their own) that
``gc`` respects, and referenced by records only once they are whole on disk. A crash at any point leaves the previous state. Every record is
also kept in the record journal (:mod:`tts_host.speakers.journal`), from which ``tts-host
library recover`` rebuilds a lost index; an index that is missing, empty or damaged while the
library holds files is refused (:mod:`tts_host.speakers.index_health`).

Typical use by core's fine-tune workflow::

    lib = Library(host=PluginHost().load())
    base = lib.add_base(backend, folder, "xtts-v2")               # validated, deduplicated
    start = lib.validate_for_finetune(base, dest=work / "start")   # re-hash, protected, schema
    ckpt = lib.add_checkpoint(backend, base, None, ["alice"], {"gpt": work / "gpt.safetensors"},
                              training_config={...}, metrics={"loss": 1.2})
    lib.add_voice("alice", backend, ckpt, {"speaker_embedding": emb}, [clip], language="en")
    lib.materialise(lib.voice("alice"), out_dir)                   # exact upstream layout
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from tts_host.errors import TTSHostError
from tts_host.speakers import db
from tts_host.speakers.blob_writes import BlobWriter
from tts_host.speakers.blobs import BlobStore
from tts_host.speakers.catalog import Catalog
from tts_host.speakers.editing import Editing
from tts_host.speakers.gc import Collector, GcReport, Leftover
from tts_host.home import default_home
from tts_host.speakers.index_health import hold_library_lock, open_index
from tts_host.speakers.integrity import Integrity, Problem, RepairReport
from tts_host.speakers.journal import RecordJournal
from tts_host.speakers.materialising import Materialising
from tts_host.speakers.records import CONDITIONING_PATH, CONDITIONING_ROLE, VOICE_DIR, Model, Record
from tts_host.speakers.snapshots import journal_everything, settle
from tts_host.speakers.validation import Validation

if TYPE_CHECKING:
    from tts_host.backend import Backend
    from tts_host.host import PluginHost
    from tts_host.speakers.records import Voice

__all__ = ["CONDITIONING_PATH", "CONDITIONING_ROLE", "VOICE_DIR", "GcReport", "Leftover", "Library", "Model",
           "Problem", "Record", "RepairReport"]


class Library(Catalog, BlobWriter, Editing, Materialising, Validation, Integrity, Collector):
    """The voice library under ``home`` (see the module docstring).

    Each job lives in its own module and is mixed in here: :class:`Catalog` (reads),
    :class:`BlobWriter` (staging and leases), :class:`Editing` (writes), :class:`Materialising`
    (model folders), :class:`Validation` (checks before a fine-tune), :class:`Integrity`
    (verify and repair) and :class:`Collector` (gc).
    """

    def __init__(self, home: Path | str | None = None, *, host: PluginHost | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = self.home / "library"
        self.blobs = BlobStore(self.root)
        self.journal = RecordJournal(self.root)
        self._lock = hold_library_lock(self.root)
        try:
            self.conn = open_index(self.root)
        except BaseException:
            os.close(self._lock)
            raise
        if not self.journal.complete():
            with db.transaction(self.conn) as conn:
                journal_everything(self.journal, conn)
                self.journal.mark_complete()
            self.journal.clear_pending()  # written from the index, inside its transaction
        self._settle_orphans()
        self._host = host
        self._backends: dict[str, Backend] = {}

    def close(self) -> None:
        """Settle what is still pending, close the index and release the library."""
        self._settle_pending()
        self.conn.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def _settle_orphans(self) -> None:
        """Settle the pending lists of writers that are gone (a crash between a write and its settling)."""
        for path, entries in self.journal.orphaned_pending():
            try:
                with self._transaction() as conn:
                    settle(self.journal, conn, entries)
                path.unlink(missing_ok=True)
            except (OSError, sqlite3.Error, TTSHostError):
                continue  # e.g. a full disk: the list stays for the next opening

    def _settle_pending(self) -> None:
        """Settle this instance's pending keys under the write lock; on failure they stay for later."""
        if not self.journal.pending:
            return
        try:
            with db.transaction(self.conn) as conn:
                settle(self.journal, conn, self.journal.pending)
            self.journal.clear_pending()
        except (OSError, sqlite3.Error, TTSHostError):
            pass  # the list stays, here and on disk: the next transaction, close or opening settles it

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; afterwards (committed or not) the journal is settled against the index."""
        try:
            with db.transaction(self.conn) as conn:
                yield conn
        finally:
            self._settle_pending()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends ------------------------------------------------------------------------
    def backend(self, backend: Backend | str) -> Backend:
        """A backend object: ``backend`` itself, or the backend of that name from the library's host.

        The library runs no model: it asks a backend only for its file roles, architecture
        record, validation and export, so that what it stores is what that backend declares.
        """
        if not isinstance(backend, str):
            return backend
        if backend not in self._backends:
            if self._host is None:
                raise TTSHostError(f"this library was opened without a plugin host, so backend '{backend}' cannot "
                                   "be found by name: open it with Library(home, host=PluginHost().load()) "
                                   "or pass the Backend object")
            self._backends[backend] = self._host.build_backend(backend)
        return self._backends[backend]

    def blob_path(self, sha256: str) -> Path:
        """The read-only file of blob ``sha256``."""
        return self.blobs.path(sha256)

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

    def stored_bytes(self) -> int:
        """Bytes of blob files on disk (each shared file counts once)."""
        return sum(path.stat().st_size for path in self.blobs.on_disk().values())


