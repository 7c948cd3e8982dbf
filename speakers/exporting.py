"""Exporting a voice: to a ``.ttsvoice`` archive or a backend's own format, honestly.

Nothing damaged leaves the library: the archive re-hashes every blob as it copies it, and a
backend format is written only after every file of the voice was re-hashed. Nothing is
overwritten without ``force``: an existing folder given as an archive target gets a file
named for the voice inside it; an existing path is replaced only with ``force`` (and then
only once the new export is whole).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.speakers.library import Library

ARCHIVE_SUFFIX = ".ttsvoice"


def archive_target(out: Path, voice_name: str, force: bool) -> Path:
    """The file an archive export writes: ``out``, or ``out/<voice>.ttsvoice`` for a folder."""
    if out.is_dir():
        out = out / f"{voice_name}{ARCHIVE_SUFFIX}"
        if out.is_dir():
            raise TTSHostError(f"cannot export to {out}: it is a folder")
    if out.exists() and not force:
        raise TTSHostError(f"{out} already exists: choose another path, or pass --force to replace it")
    return out


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)


def write_folder(out: Path, force: bool, write: Callable[[Path], Path]) -> Path:
    """Run ``write(folder)`` for a folder export to ``out``; an existing ``out`` is replaced only with ``force``."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return write(out)
    if not force:
        raise TTSHostError(f"{out} already exists: choose another path, or pass --force to replace it")
    staging = out.with_name(f".{out.name}.{os.getpid()}.new")
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    _remove(staging)
    try:
        write(staging)
        out.rename(old)
        staging.rename(out)
    except BaseException:
        _remove(staging)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    _remove(old)
    return out


def export_format(lib: Library, name: str, fmt: str, out: Path, *, force: bool = False) -> Path:
    """Write voice ``name`` in its backend's format ``fmt`` to ``out``, after re-hashing every file."""
    voice = lib.voice(name)
    problems = lib.verify(voice, deep=True)
    if problems:
        raise TTSHostError(f"{voice.label} cannot be exported: {problems[0].line()}; "
                           "`tts-host voices repair` restores it")
    backend = lib.backend(voice.backend)
    if fmt not in backend.export_formats():
        known = ", ".join(["ttsvoice", *backend.export_formats()])
        raise TTSHostError(f"backend '{backend.name}' cannot export format '{fmt}' (formats: {known})")
    conditioning = lib.voice_conditioning(voice)
    with lib.materialised(lib.model_of(voice)) as folder:
        return write_folder(out, force, lambda target: backend.export(voice, folder, conditioning, fmt, target))
