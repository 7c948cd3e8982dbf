"""One-line messages for failed writes: a full disk, a read-only target, a missing folder."""

from __future__ import annotations

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tts_host.errors import TTSHostError

REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "its folder does not exist",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
}


def free_space(path: Path) -> int | None:
    """Free bytes on the file system that holds ``path`` (its nearest existing folder)."""
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def write_error_line(exc: OSError, path: Path, needed: int | None = None) -> str:
    """``cannot write PATH: why`` (with the free space and the bytes needed when the disk is full)."""
    reason = REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    line = f"cannot write {path}: {reason}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = free_space(path)
        want = f"{needed / 1e6:.1f} MB needed, " if needed is not None else ""
        line += f" ({want}{free / 1e6:.1f} MB free there)" if free is not None else ""
    return line


class WriteError(TTSHostError):
    """A write failed for a reason the user can fix (full disk, quota, permissions); one line."""


@contextmanager
def write_errors_reported(path: Path, needed: int | None = None) -> Iterator[None]:
    """Turn an ``OSError`` of a write to ``path`` into one :class:`WriteError` line (see :func:`write_error_line`)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in REASONS:
            raise
        raise WriteError(write_error_line(exc, path, needed)) from exc
