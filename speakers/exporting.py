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
EXPORT_MARKER = ".tts-host-export"  # in every folder an export writes: what --force may replace


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


def _mark(written: Path) -> Path:
    """Leave the marker that lets a later ``--force`` export replace this folder."""
    if written.is_dir():
        (written / EXPORT_MARKER).write_text("written by `tts-host voices export`\n", encoding="utf-8")
    return written


def _check_replaceable(out: Path, home: Path) -> None:
    """Refuse to replace the library's home (or what holds it, or lies in it) or a folder that is not an export."""
    target, home = out.resolve(), home.resolve()
    if target == home or target in home.parents or home in target.parents:
        raise TTSHostError(f"{out} holds or lies inside the library home {home}: export somewhere else")
    if out.is_dir() and not (out / EXPORT_MARKER).is_file():
        raise TTSHostError(f"{out} is a folder that an export did not write: --force replaces only an earlier "
                           "export; choose another path")


def write_folder(out: Path, force: bool, write: Callable[[Path], Path], home: Path) -> Path:
    """Run ``write(folder)`` for an export to ``out``; an existing ``out`` is replaced only with ``force``.

    ``force`` replaces a file, or a folder an earlier export wrote (it holds a marker); never the
    library's home, a folder holding it, or anything inside it.
    """
    if out.exists():
        _check_replaceable(out, home)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return _mark(write(out))
    if not force:
        raise TTSHostError(f"{out} already exists: choose another path, or pass --force to replace it")
    staging = out.with_name(f".{out.name}.{os.getpid()}.new")
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    _remove(staging)
    try:
        _mark(write(staging))
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
    consent = {f.path: lib.blob_path(f.sha256) for f in lib.files_of(voice) if f.role.startswith("consent")}

    def write(target: Path) -> Path:
        written = backend.export(voice, folder, conditioning, fmt, target)
        if Path(written).is_dir():  # the consent on record travels with the voice
            for path, blob in consent.items():
                (Path(written) / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(blob, Path(written) / path)
        return written

    with lib.materialised(lib.model_of(voice)) as folder:
        return write_folder(out, force, write, lib.home)
