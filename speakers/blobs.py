"""The content-addressed blob store: immutable, read-only files named by their SHA-256.

A file enters the store in two steps: :meth:`BlobStore.stage` copies it into ``tmp/``
while hashing it and fsyncs it; :meth:`BlobStore.commit` makes it read-only and renames it
to ``blobs/<sha[:2]>/<sha>`` (an atomic rename, then an fsync of the directory). A crash at
any point leaves either no blob or a whole one; an interrupted stage leaves only a temp file
named after the writing process, which ``gc`` removes once that process is gone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from tts_host.oserrors import write_errors_reported
from tts_host.hashing import CHUNK

HEX = frozenset("0123456789abcdef")


def is_sha256(text: str) -> bool:
    """Whether ``text`` is a lower-case hex SHA-256 digest."""
    return len(text) == 64 and set(text) <= HEX


@dataclass(frozen=True)
class StagedBlob:
    """A hashed, fsynced temp file waiting to be committed."""

    sha256: str
    size: int
    tmp_path: Path


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    with write_errors_reported(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class BlobStore:
    """Blobs under ``root/blobs``, temp files under ``root/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.tmp_dir = root / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob ``sha256`` lives (whether or not it exists)."""
        return self.blob_dir / sha256[:2] / sha256

    def new_tmp_path(self, suffix: str = ".tmp") -> Path:
        """A fresh temp path in the store, named after this process (so gc can tell it is live)."""
        return self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    def stage_stream(self, source: BinaryIO, limit: int | None = None) -> StagedBlob:
        """Copy a stream into a temp file while hashing it; ``limit`` caps the bytes read."""
        tmp = self.new_tmp_path()
        digest = hashlib.sha256()
        size = 0
        try:
            with write_errors_reported(self.root), open(tmp, "wb") as out:
                while True:
                    want = CHUNK if limit is None else min(CHUNK, limit - size + 1)
                    if want <= 0:
                        break
                    chunk = source.read(want)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StagedBlob(digest.hexdigest(), size, tmp)

    def stage_file(self, path: Path) -> StagedBlob:
        """Copy a file into a temp file while hashing it."""
        with open(path, "rb") as source:
            return self.stage_stream(source)

    def stage_bytes(self, data: bytes) -> StagedBlob:
        """Write bytes to a temp file."""
        tmp = self.new_tmp_path()
        try:
            with write_errors_reported(self.root, len(data)), open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StagedBlob(hashlib.sha256(data).hexdigest(), len(data), tmp)

    def commit(self, staged: StagedBlob, is_intact: Callable[[str, Path], bool]) -> bool:
        """Move a staged blob into place; returns whether it was written (not a duplicate).

        An existing blob with the same name is kept when ``is_intact`` says so; a damaged
        one is replaced by the staged copy (this is how re-adding a file repairs a blob).
        """
        target = self.path(staged.sha256)
        if target.exists() and is_intact(staged.sha256, target):
            staged.tmp_path.unlink(missing_ok=True)
            return False
        target.parent.mkdir(exist_ok=True)
        os.chmod(staged.tmp_path, 0o444)
        os.replace(staged.tmp_path, target)
        fsync_dir(target.parent)
        return True

    def discard(self, staged: StagedBlob) -> None:
        """Remove a staged temp file that will not be committed."""
        staged.tmp_path.unlink(missing_ok=True)

    def on_disk(self) -> dict[str, Path]:
        """Every blob file present: ``{sha256: path}``."""
        found: dict[str, Path] = {}
        if not self.blob_dir.is_dir():
            return found
        for entry in os.scandir(self.blob_dir):
            if entry.is_dir(follow_symlinks=False) and len(entry.name) == 2:
                for blob in os.scandir(entry.path):
                    if is_sha256(blob.name):
                        found[blob.name] = Path(blob.path)
        return found


def link_or_copy(source: Path, target: Path) -> str:
    """Hard-link ``source`` to ``target``, or copy it where links are impossible; returns which."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return "link"
    except OSError:
        shutil.copyfile(source, target)
        return "copy"
