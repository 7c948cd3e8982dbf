"""Library records: file entries, bases, checkpoints and voices (plain frozen data)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Union

from tts_host.errors import TTSHostError


CONDITIONING_ROLE = "conditioning"
CONDITIONING_PATH = "conditioning.safetensors"
VOICE_DIR = "voice"  # where a voice's own files go when it is materialised


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest: its role, its path in a model folder, its blob and size."""

    role: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Base:
    """A base model imported into the library."""

    id: int
    name: str
    backend: str
    architecture: dict[str, Any]
    files: tuple[FileEntry, ...]
    created: float
    digest: str = ""

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"base '{self.name}'"


@dataclass(frozen=True)
class Checkpoint:
    """A fine-tuned model: a base, an optional parent checkpoint and its full file manifest."""

    id: int
    uid: str
    backend: str
    base_id: int
    base_name: str
    parent_id: int | None
    speakers: tuple[str, ...]
    training_config: dict[str, Any]
    metrics: dict[str, Any]
    files: tuple[FileEntry, ...]
    created: float

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"checkpoint {self.id}"


@dataclass(frozen=True)
class Voice:
    """A named voice: its model (a base or a checkpoint) and its own files.

    ``files`` holds the conditioning blob (role ``conditioning``) and the reference clips
    (roles ``reference:N``).
    """

    id: int
    name: str
    backend: str
    base_id: int
    base_name: str
    checkpoint_id: int | None
    files: tuple[FileEntry, ...] = field(default=())
    language: str | None = None
    notes: str = ""
    created: float = 0.0

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"voice '{self.name}'"


Model = Union[Base, Checkpoint]
Record = Union[Base, Checkpoint, Voice]


def manifest_digest(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """A stable SHA-256 of a manifest's roles, paths and blobs (identifies a base's content)."""
    canonical = json.dumps(sorted((f.role, f.path, f.sha256) for f in files))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_relative_path(path: str, what: str) -> str:
    """A manifest path must be relative, normalised and stay inside its folder."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise TTSHostError(f"{what}: path {path!r} is not a plain relative path")
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal != path or normal == "." or normal.split("/")[0] == "..":
        raise TTSHostError(f"{what}: path {path!r} is not a plain relative path inside the model folder")
    return path
