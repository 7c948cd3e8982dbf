"""Writing the files of a dataset: atomically, and with one clear error when the disk is full."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from tts_host.data.errors import DiskFullError
from tts_host.folders import write_file_atomically
from tts_host.oserrors import write_errors_reported

def disk_full_reported(path: Path, needed: int | None = None) -> AbstractContextManager[None]:
    """Turn a failed write of ``path`` (a full disk above all) into one :class:`DiskFullError` line."""
    return write_errors_reported(path, needed, error=DiskFullError,
                                 advice="free some space or choose another output folder, then run the same command again")


def write_atomic(path: Path, data: bytes) -> None:
    """:func:`tts_host.folders.write_file_atomically`, a full disk reported as one :class:`DiskFullError`."""
    with disk_full_reported(path, len(data)):
        write_file_atomically(path, data)
