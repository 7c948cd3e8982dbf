"""Verifying blobs and the index, and repairing damaged voices (mixed into ``Library``)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tts_host.errors import TTSHostError
from tts_host.speakers import db
from tts_host.speakers.catalog import LibraryParts
from tts_host.hashing import parallel_map, sha256_file
from tts_host.speakers.index_health import integrity_problems
from tts_host.speakers.records import (
    Base,
    Checkpoint,
    FileEntry,
    Record,
    Voice,
)
from tts_host.speakers.snapshots import KEY_COLUMNS, journal_record


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
class RepairReport:
    """What ``repair`` changed."""

    actions: list[str] = field(default_factory=list)


class Integrity(LibraryParts):
    """Checks of every blob (fast or deep), of the index, and repairs."""

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
        rows = self.conn.execute(  # blobs no record uses are gc's business, present or not
            "SELECT sha256, size, st_size, st_mtime_ns, st_ino FROM blobs "
            "WHERE sha256 IN (SELECT sha256 FROM manifest_files)").fetchall()
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

    def rewrite_missing_records(self) -> list[str]:
        """Write the record file of every indexed record that has none (or an unreadable one); one line each.

        Runs under the index's write lock and leaves alone the keys running writers are changing.
        """
        rewritten = []
        with db.transaction(self.conn) as conn:
            busy = self.journal.live_pending_keys()
            records, _ = self.journal.load()
            for kind, column in KEY_COLUMNS.items():
                journaled = {str(r.get(column)) for r in records[kind]}
                for key, row_id in conn.execute(f"SELECT {column}, id FROM {kind} ORDER BY id").fetchall():
                    if key not in journaled and (kind, key) not in busy:
                        journal_record(self.journal, conn, kind, row_id)
                        rewritten.append(f"rewrote the record file of {kind[:-1]} {key!r} from the index")
        self.journal.clear_pending()
        return rewritten

    def index_problems(self, *, deep: bool = False) -> list[str]:
        """SQLite's check of the index (full with ``deep``), unreadable record files, and records the index lost.

        Runs under the index's write lock and skips keys that running writers are changing, so a
        write in progress is never reported. Each line says what to do.
        """
        problems = integrity_problems(self.conn, full=deep)
        if problems:
            return [f"index: {line} (`tts-host library recover` rebuilds it)" for line in problems]
        with db.transaction(self.conn) as conn:
            busy = self.journal.live_pending_keys()
            records, unreadable = self.journal.load()
            found = [f"record file {line}: no record of the index is stored there; remove it" for line in unreadable]
            for kind, column in KEY_COLUMNS.items():
                indexed = {r[0] for r in conn.execute(f"SELECT {column} FROM {kind}")}
                for key in sorted({str(r.get(column)) for r in records[kind]} - indexed):
                    if (kind, key) not in busy:
                        found.append(f"{kind[:-1]} {key!r} has a record file but is not in the index: the index "
                                     "lost it (`tts-host library recover --force` rebuilds the index)")
        return found


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

