"""Garbage collection: unused blobs, stale leases, temp files and fine-tune work folders."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from tts_host.speakers import db
from tts_host.speakers.catalog import LibraryParts


@dataclass
class GcReport:
    """What ``gc`` removed."""

    blobs: int = 0
    bytes: int = 0
    temp_files: int = 0
    leases: int = 0
    unindexed: int = 0  # blobs records use that the index does not know: kept (the index needs `recover`)
    runs: int = 0



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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` (on this host) is still running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Collector(LibraryParts):
    """``gc`` and what it would remove (mixed into ``Library``)."""

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
            dead = [r["id"] for r in leases if r["hostname"] == here and not pid_alive(r["pid"])]
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
            for tmp in self._dead_temp_files():
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

    def leftovers(self) -> list[Leftover]:
        """Temp files of dead processes and fine-tune work folders: what ``gc`` (``--runs``) removes."""
        found = [Leftover(tmp, _bytes_under(tmp), "temp file of a process that is gone")
                 for tmp in self._dead_temp_files()]
        found += [Leftover(old, old.stat().st_size, "an index `library recover` replaced (delete it once the "
                           "recovered library verifies)") for old in sorted(self.root.glob("index.sqlite.broken-*"))]
        return found + work_leftovers(self.home)

    def _dead_temp_files(self) -> list[Path]:
        """Temp files in the store and the journal whose writing process is gone."""
        found = []
        for tmp in sorted(self.blobs.tmp_dir.iterdir()):
            pid = tmp.name.split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                found.append(tmp)
        for tmp in sorted(self.journal.dir.glob("*/.*.tmp")):  # .<record>.json.<pid>.tmp
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not pid_alive(int(pid)):
                found.append(tmp)
        return found

