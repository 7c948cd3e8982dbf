"""Writing the files of a dataset: atomically, and with one clear error when the disk is full."""

from __future__ import annotations

import os
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from tts_host.data.errors import DiskFullError
from tts_host.oserrors import write_errors_reported

def disk_full_reported(path: Path, needed: int | None = None) -> AbstractContextManager[None]:
    """Turn a failed write of ``path`` (a full disk above all) into one :class:`DiskFullError` line."""
    return write_errors_reported(path, needed, error=DiskFullError,
                                 advice="free some space or choose another output folder, then run the same command again")


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
