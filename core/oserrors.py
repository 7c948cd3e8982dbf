"""One-line messages for failed writes: a full disk (in any shape it reaches Python), a read-only target, a missing folder."""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator

from tts_host.errors import TTSHostError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
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


def human_size(size: float) -> str:
    """``size`` bytes as B, KiB, MiB, GiB or TiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def free_space(path: Path) -> int | None:
    """Free bytes on the file system that holds ``path`` (its nearest existing folder)."""
    for folder in (Path(path).absolute(), *Path(path).absolute().parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def write_error_line(exc: OSError, path: Path, needed: int | None = None) -> str:
    """``cannot write PATH: why`` (with the bytes needed and the free space when the disk is full)."""
    reason = REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    line = f"cannot write {path}: {reason}"
    if exc.errno in DISK_FULL:
        free = free_space(path)
        want = f"{human_size(needed)} needed, " if needed is not None else ""
        line += f" ({want}{human_size(free) if free is not None else 'unknown'} free there)"
    return line


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The full-disk or quota ``OSError`` behind ``exc`` (raised from or during it), else ``None``.

    It reaches Python in several shapes: an ``OSError`` from a plain write, a ``RuntimeError``
    from ``torch.save`` with that ``OSError`` as its context (``unexpected pos ...``), or a
    safetensors error whose message holds the OS error's text.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return exc
        for code in DISK_FULL:
            if os.strerror(code) in str(exc):  # e.g. safetensors: "I/O error: No space left on device (os error 28)"
                return OSError(code, os.strerror(code))
        exc = exc.__cause__ or exc.__context__
    return None


class WriteError(TTSHostError):
    """A write failed for a reason the user can fix (full disk, quota, permissions); one line."""


@contextmanager
def write_errors_reported(path: Path, needed: int | None = None, *, advice: str = "",
                          error: type[TTSHostError] = WriteError) -> Iterator[None]:
    """Turn a failed write to ``path`` into one ``error`` line (see :func:`write_error_line`), with ``advice``.

    Covers an ``OSError`` the user can act on (:data:`REASONS`) and a full disk in any shape
    (:func:`disk_full_error`); anything else propagates unchanged.
    """
    try:
        yield
    except TTSHostError:
        raise
    except Exception as exc:
        cause = exc if isinstance(exc, OSError) and exc.errno in REASONS else disk_full_error(exc)
        if cause is None:
            raise
        suffix = f"; {advice}" if advice else ""
        raise error(write_error_line(cause, Path(path), needed) + suffix) from exc


def disk_full_errors(path: Path) -> AbstractContextManager[None]:
    """:func:`write_errors_reported` for model and training files: the fix is to free space and rerun."""
    return write_errors_reported(path, advice="free some space, then run the same command again")
