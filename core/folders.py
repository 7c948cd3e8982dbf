"""Files and folders written whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tts_host.errors import TTSHostError


@contextmanager
def new_folder(out: Path, what: str = "output folder") -> Iterator[Path]:
    """Yield a staging folder beside ``out``; it becomes ``out`` only if the block succeeds.

    ``out`` must not exist or be an empty folder; on any error the staging folder is removed
    and ``out`` is left as it was.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TTSHostError(f"{what} {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_file_atomically(path: Path, data: bytes, temp: Path | None = None) -> Path:
    """Write ``data`` to ``path``: a temp file beside it (``temp``, or a fresh ``.tmp-*``), fsynced, renamed.

    On any failure the temp file is removed and ``path`` keeps its previous content; the rename
    is made durable by an fsync of the folder. ``OSError`` propagates: callers say what failed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if temp is None:
        handle, name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        temp = Path(name)
    else:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
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
        temp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path
