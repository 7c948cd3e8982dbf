"""Writing the files of a dataset: atomically, and with one clear error when the disk is full."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tts_host.data.errors import DiskFullError

FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def _human_size(size: int) -> str:
    """``size`` bytes as B, KiB, MiB, GiB or TiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _free_space(path: Path) -> str:
    for folder in (path, *path.parents):
        try:
            return _human_size(shutil.disk_usage(folder).free)
        except OSError:
            continue
    return "unknown"


@contextmanager
def disk_full_reported(path: Path, needed: int | None = None) -> Iterator[None]:
    """Turn ENOSPC / EDQUOT raised inside the block into one :class:`DiskFullError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        wanted = f"{_human_size(needed)} needed, " if needed is not None else ""
        raise DiskFullError(
            f"cannot write {path}: {FULL[exc.errno]} ({wanted}{_free_space(path)} free there); "
            "free some space or choose another output folder, then run the same command again") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: a temp file in the same folder, fsynced, then renamed over ``path``.

    Nothing is left half-written: on any failure the temp file is removed. A full disk raises
    :class:`DiskFullError`.
    """
    with disk_full_reported(path, len(data)):
        handle, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view):]
                os.fsync(handle)
            finally:
                os.close(handle)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
