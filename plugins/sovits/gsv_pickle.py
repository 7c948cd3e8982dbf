"""Loading GPT-SoVITS's torch files without running code they might carry.

``torch.load(weights_only=True)`` is tried first. GPT-SoVITS's own s2 saves pickle its ``utils.HParams``
config class, which that refuses; only then is the file read again through :class:`RestrictedPickle`, an
unpickler that resolves just the globals a state dict and a config need and maps ``HParams`` onto an
inert local record. Anything else (``os.system``, ``builtins.eval``, ...) is refused before it can run.

GPT-SoVITS's LoRA, v3/v4 and v2Pro files overwrite the zip's leading ``PK`` with a two-byte version tag;
:func:`load_torch_file` restores ``PK`` in memory, as upstream's ``load_sovits_new`` does, and reports
the bytes it found.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from tts_host.errors import TTSHostError

ZIP_HEADER = b"PK"
# GPT-SoVITS process_ckpt.head2version: tag -> (model version, is a LoRA file).
VERSION_TAGS: dict[bytes, tuple[str, bool]] = {
    b"00": ("v1", False),
    b"01": ("v2", False),
    b"02": ("v3", False),
    b"03": ("v3", True),
    b"04": ("v4", True),
    b"05": ("v2Pro", False),
    b"06": ("v2ProPlus", False),
}


class HParamsRecord:
    """Stands in for GPT-SoVITS's ``utils.HParams`` while unpickling: it only stores what it is given."""

    def __init__(self) -> None:
        self._fields: dict[Any, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"HParams state is a {type(state).__name__}, not a dict")
        self.__dict__.setdefault("_fields", {}).update(state)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_fields", {})[key] = value

    def as_dict(self) -> dict:
        return {key: to_plain(value) for key, value in self.__dict__.get("_fields", {}).items()}


def to_plain(value: Any) -> Any:
    """``value`` with every HParams record and mapping turned into a plain ``dict`` (recursively)."""
    if isinstance(value, HParamsRecord):
        return value.as_dict()
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_plain(item) for item in value)
    return value


_HPARAMS_NAMES = {("utils", "HParams"), ("GPT_SoVITS.utils", "HParams")}
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
}


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol-2 pickles (torch.save's) name builtins as ``__builtin__``: map them as pickle itself does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _allowed_global(module: str, name: str) -> Any:
    if (module, name) in _HPARAMS_NAMES:
        return HParamsRecord
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if module == "torch":
        found = getattr(torch, name, None)
        if isinstance(found, torch.dtype):
            return found
        # Typed storages (torch.HalfStorage ...): torch's own unpickler normally resolves these first.
        if name.endswith("Storage") and isinstance(found, type) and found.__module__ in {"torch", "torch.storage"}:
            return found
    return None


class RestrictedPickle:
    """A module-like object for ``torch.load(pickle_module=...)`` that refuses unexpected globals."""

    __name__ = "tts_host_restricted_pickle"

    def __init__(self, path: Path) -> None:
        source = str(path)

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                module, name = _python3_name(module, name)
                found = _allowed_global(module, name)
                if found is None:
                    raise TTSHostError(
                        f"{source}: refused to load: it pickles {module}.{name}, which a GPT-SoVITS model "
                        "file does not need (the file may be hostile)"
                    )
                return found

        self.Unpickler = Unpickler

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()


def _first_line(error: BaseException) -> str:
    for line in str(error).splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= 200 else text[:197] + "..."
    return type(error).__name__


def _needs_restricted(error: BaseException) -> bool:
    return isinstance(error, pickle.UnpicklingError)


def load_torch_file(path: Path) -> tuple[Any, bytes]:
    """The object ``path`` holds, and the two bytes it starts with (``b"PK"`` or a version tag)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(2)
            rest = handle.read() if header != ZIP_HEADER and header in VERSION_TAGS else b""
    except OSError as error:
        raise TTSHostError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(header) < 2:
        raise TTSHostError(f"{path}: empty or truncated file ({len(header)} bytes)")
    if header != ZIP_HEADER and header not in VERSION_TAGS:
        raise TTSHostError(
            f"{path}: not a GPT-SoVITS model file (starts with {header!r}; expected b'PK' or a version tag "
            f"{min(VERSION_TAGS).decode()}..{max(VERSION_TAGS).decode()})"
        )

    def source() -> Any:
        return str(path) if header == ZIP_HEADER else io.BytesIO(ZIP_HEADER + rest)

    def damaged(error: BaseException) -> TTSHostError:
        return TTSHostError(f"{path}: cannot read this PyTorch file (truncated or damaged?): {_first_line(error)}")

    try:  # the central directory alone: cheap, and it tells a TorchScript archive (which torch.load would run)
        with zipfile.ZipFile(source()) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise damaged(error) from None
    if any(name == "constants.pkl" or name.endswith("/constants.pkl") for name in names):
        raise TTSHostError(f"{path}: a TorchScript archive, not a GPT-SoVITS model file")

    try:
        return torch.load(source(), map_location="cpu", weights_only=True), header
    except Exception as error:  # noqa: BLE001 - every failure becomes one line
        if not _needs_restricted(error):
            raise damaged(error) from None
    # weights_only refused a global (GPT-SoVITS's HParams config): read it again, resolving only the
    # globals listed above.
    try:
        restricted = RestrictedPickle(path)
        return torch.load(source(), map_location="cpu", weights_only=False, pickle_module=restricted), header
    except TTSHostError:
        raise
    except Exception as error:  # noqa: BLE001
        raise damaged(error) from None
