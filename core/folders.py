"""Folders written whole or not at all."""

from __future__ import annotations

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
