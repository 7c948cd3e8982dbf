"""The ``.ttsvoice`` archive: one voice, its model records and blobs, in a plain tar.

Layout (members in this order)::

    manifest.json        format, version, the voice, its checkpoint, its base, {sha256: size}
    blobs/<sha256>       one member per blob, named by its hash

The base's blobs are included unless the export says otherwise; then importing needs a
base with the same content already in the library, and says which one to add if it is
missing. Import reads the manifest first, then streams every member into the store's temp
area, checking its type, its name, its size (never more than the manifest says) and its
hash; only when all are whole does one transaction add the records.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tts_host.errors import TTSHostError
from tts_host.speakers.blobs import StagedBlob, is_sha256
from tts_host.speakers.names import check_name
from tts_host.speakers.editing import ImportedCheckpoint, ImportedVoice
from tts_host.speakers.records import Base, Checkpoint, FileEntry, Voice, check_relative_path, manifest_digest

if TYPE_CHECKING:
    from tts_host.speakers.library import Library

FORMAT = "tts-host.voice"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20


class ArchiveError(TTSHostError):
    """A ``.ttsvoice`` file that cannot be imported as it is."""


def _files(files: tuple[FileEntry, ...]) -> list[dict[str, Any]]:
    return [{"role": f.role, "path": f.path, "sha256": f.sha256, "size": f.size} for f in files]


def export_voice(lib: Library, voice: Voice, out: Path, *, include_base: bool = True) -> Path:
    """Write ``voice`` to ``out`` as a ``.ttsvoice`` archive (atomically: temp file + rename)."""
    model = lib.model_of(voice)
    base = model if isinstance(model, Base) else lib.base_by_id(model.base_id)
    checkpoint = model if isinstance(model, Checkpoint) else None
    base_shas = {f.sha256 for f in base.files}
    wanted: dict[str, int] = {f.sha256: f.size for f in voice.files}
    if checkpoint is not None:
        wanted.update({f.sha256: f.size for f in checkpoint.files if include_base or f.sha256 not in base_shas})
    if include_base:
        wanted.update({f.sha256: f.size for f in base.files})
    lineage = lib.lineage(checkpoint) if checkpoint else []
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "voice": {"name": voice.name, "backend": voice.backend, "language": voice.language, "notes": voice.notes,
                  "created": voice.created, "files": _files(voice.files)},
        "base": {"name": base.name, "backend": base.backend, "architecture": base.architecture,
                 "digest": base.digest, "files": _files(base.files)},
        "includes_base": include_base,
        "checkpoint": None if checkpoint is None else {
            "uid": checkpoint.uid, "backend": checkpoint.backend,
            "parent_uid": lineage[-2].uid if len(lineage) > 1 else None,
            "speakers": list(checkpoint.speakers), "training_config": checkpoint.training_config,
            "metrics": checkpoint.metrics, "created": checkpoint.created, "files": _files(checkpoint.files)},
        "lineage": [{"uid": c.uid, "speakers": list(c.speakers), "metrics": c.metrics} for c in lineage],
        "blobs": dict(sorted(wanted.items())),
    }
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            tar.addfile(_member(MANIFEST, len(data)), io.BytesIO(data))
            names = {f.sha256: f.path for f in (*voice.files, *base.files, *(checkpoint.files if checkpoint else ()))}
            for sha, size in manifest["blobs"].items():
                path = lib.blob_path(sha)
                if not path.is_file() or path.stat().st_size != size:
                    raise TTSHostError(f"{voice.label}: file {names[sha]} (blob {sha[:16]}) is missing or has the "
                                       "wrong size: nothing exported; `tts-host voices repair` restores it")
                with open(path, "rb") as handle:
                    reader = _HashingReader(handle)
                    tar.addfile(_member(f"blobs/{sha}", size), reader)
                if reader.hexdigest() != sha:
                    raise TTSHostError(f"{voice.label}: file {names[sha]} is damaged (expected sha256 {sha[:16]}, "
                                       f"found {reader.hexdigest()[:16]}): nothing exported; "
                                       "`tts-host voices repair` restores it")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


class _HashingReader:
    """A read-only file wrapper that hashes what is read through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        """Read and hash up to ``size`` bytes."""
        data = self._handle.read(size)
        self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        """The SHA-256 of everything read so far."""
        return self._digest.hexdigest()


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o444, 0
    return info


def _manifest_files(raw: Any, what: str) -> tuple[FileEntry, ...]:
    if not isinstance(raw, list):
        raise ArchiveError(f"{what}: the file list is not a list")
    files = []
    for item in raw:
        try:
            entry = FileEntry(str(item["role"]), str(item["path"]), str(item["sha256"]), int(item["size"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"{what}: a file entry is malformed ({exc})") from exc
        if not is_sha256(entry.sha256) or entry.size < 0:
            raise ArchiveError(f"{what}: file {entry.path!r} has a malformed sha256 or size")
        try:
            check_relative_path(entry.path, what)
        except TTSHostError as exc:
            raise ArchiveError(str(exc)) from exc
        files.append(entry)
    return tuple(files)


def _read_manifest(tar: tarfile.TarFile, source: Path) -> dict[str, Any]:
    member = tar.next()
    if member is None or member.name != MANIFEST or not member.isreg() or member.size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{source}: not a .ttsvoice archive (its first member must be {MANIFEST})")
    try:
        manifest = json.loads(tar.extractfile(member).read())
    except ValueError as exc:
        raise ArchiveError(f"{source}: {MANIFEST} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{source}: not a .ttsvoice archive (format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise ArchiveError(f"{source}: archive version {manifest.get('version')} is not supported (this tts-host reads {VERSION})")
    blobs = manifest.get("blobs")
    if not isinstance(blobs, dict) or not all(is_sha256(k) and isinstance(v, int) and v >= 0 for k, v in blobs.items()):
        raise ArchiveError(f"{source}: the manifest's blob list is malformed")
    return manifest


def _check_member(member: tarfile.TarInfo, blobs: dict[str, int], seen: dict, source: Path) -> str:
    name = member.name
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise ArchiveError(f"{source}: member {name!r} has an absolute or parent path: refused")
    if not member.isreg():
        kind = "link" if (member.issym() or member.islnk()) else "device" if (member.ischr() or member.isblk()) else "non-file"
        raise ArchiveError(f"{source}: member {name!r} is a {kind}: refused")
    prefix, _, sha = name.partition("/")
    if prefix != "blobs" or sha not in blobs:
        raise ArchiveError(f"{source}: member {name!r} is not a blob listed in the manifest")
    if sha in seen:
        raise ArchiveError(f"{source}: member {name!r} appears twice")
    if member.size > blobs[sha]:
        raise ArchiveError(f"{source}: member {name!r} is {member.size} bytes, more than the {blobs[sha]} the manifest says")
    return sha


def import_voice(lib: Library, source: Path, as_name: str | None = None) -> Voice:
    """Import a ``.ttsvoice`` archive; nothing enters the library unless every check passes."""
    source = Path(source)
    if not source.is_file():
        raise ArchiveError(f"archive {source} does not exist")
    staged: dict[str, StagedBlob] = {}
    try:
        try:
            tar = tarfile.open(source, "r|*")
        except tarfile.TarError as exc:
            raise ArchiveError(f"{source}: not a tar archive ({exc})") from exc
        with tar:
            manifest = _read_manifest(tar, source)
            plan = _plan(lib, manifest, source, as_name)
            blobs: dict[str, int] = manifest["blobs"]
            try:
                while (member := tar.next()) is not None:
                    sha = _check_member(member, blobs, staged, source)
                    blob = lib.blobs.stage_stream(tar.extractfile(member), limit=blobs[sha])
                    staged[sha] = blob
                    if blob.sha256 != sha or blob.size != blobs[sha]:
                        raise ArchiveError(f"{source}: member blobs/{sha[:16]} does not match its hash or size "
                                           f"(found sha256 {blob.sha256[:16]}, {blob.size} bytes)")
            except tarfile.TarError as exc:
                raise ArchiveError(f"{source}: the archive is damaged ({exc})") from exc
        missing = [sha for sha in blobs if sha not in staged]
        if missing:
            raise ArchiveError(f"{source}: blob {missing[0][:16]} listed in the manifest is missing from the archive")
        needed = {f.sha256 for f in plan["needed"]}
        absent = sorted(needed - set(staged) - plan["local_blobs"])
        if absent:
            raise ArchiveError(f"{source}: the voice needs blob {absent[0][:16]}, which the archive does not hold")
    except BaseException:
        for blob in staged.values():
            lib.blobs.discard(blob)
        raise
    return _commit(lib, plan, list(staged.values()))


def _plan(lib: Library, manifest: dict[str, Any], source: Path, as_name: str | None) -> dict[str, Any]:
    """Check the manifest's records against the library before any blob is read."""
    try:
        voice, base_raw, ckpt = manifest["voice"], manifest["base"], manifest.get("checkpoint")
        name = check_name(as_name or voice["name"], "voice")
        base_name = check_name(base_raw["name"], "base")
        backend = str(voice["backend"])
    except (KeyError, TypeError) as exc:
        raise ArchiveError(f"{source}: the manifest is missing {exc}") from exc
    base_files = _manifest_files(base_raw.get("files"), f"{source} base")
    voice_files = _manifest_files(voice.get("files"), f"{source} voice")
    ckpt_files = _manifest_files(ckpt.get("files"), f"{source} checkpoint") if ckpt else ()
    digest = manifest_digest(base_files)
    backends = {backend, str(base_raw.get("backend")), *([str(ckpt.get("backend"))] if ckpt else [])}
    if len(backends) != 1:
        raise ArchiveError(f"{source}: the voice, its checkpoint and its base name different backends ({', '.join(sorted(backends))})")
    if lib.has_voice(name):
        raise ArchiveError(f"a voice named '{name}' already exists: import with --as NEW_NAME")
    existing = lib.base_with_content(digest, backend)
    same_name = lib.has_base(base_name)
    if existing is None and not manifest.get("includes_base"):
        raise ArchiveError(
            f"{source}: voice '{voice['name']}' needs base '{base_name}' (backend '{base_raw.get('backend')}', "
            f"digest {digest[:16]}), which is not in the library: add it first with "
            f"`tts-host base add {base_raw.get('backend')} PATH --name {base_name}`"
        )
    if existing is None and same_name:
        raise ArchiveError(f"{source}: the library has a different base named '{base_name}': rename it, then import again")
    needed = list(voice_files) + list(ckpt_files) + ([] if existing else list(base_files))
    local_blobs = {f.sha256 for f in existing.files} if existing else set()
    return {"name": name, "backend": backend, "voice": voice, "base": base_raw,
            "base_name": existing.name if existing else base_name,
            "base_files": base_files, "digest": digest, "checkpoint": ckpt, "checkpoint_files": ckpt_files,
            "voice_files": voice_files, "needed": needed, "local_blobs": local_blobs, "lineage": manifest.get("lineage") or []}


def _commit(lib: Library, plan: dict[str, Any], staged: list[StagedBlob]) -> Voice:
    ckpt = plan["checkpoint"]
    checkpoint = None
    if ckpt:
        checkpoint = ImportedCheckpoint(
            uid=str(ckpt["uid"]), backend=str(ckpt["backend"]), parent_uid=str(ckpt.get("parent_uid")),
            speakers=[check_name(s, "speaker") for s in ckpt.get("speakers") or []],
            training_config=dict(ckpt.get("training_config") or {}), metrics=dict(ckpt.get("metrics") or {}),
            created=float(ckpt.get("created") or 0), files=plan["checkpoint_files"],
            earlier_lineage=list(plan["lineage"][:-1]))
    voice = plan["voice"]
    imported = ImportedVoice(
        name=plan["name"], backend=plan["backend"], base_name=plan["base_name"],
        base_backend=str(plan["base"].get("backend")), base_architecture=dict(plan["base"].get("architecture") or {}),
        base_digest=plan["digest"], base_files=plan["base_files"], checkpoint=checkpoint,
        language=voice.get("language"), notes=str(voice.get("notes") or ""), created=float(voice.get("created") or 0),
        files=plan["voice_files"])
    return lib.add_imported_voice(imported, staged)
