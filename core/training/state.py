"""Resumable training state written with safetensors plus a JSON sidecar (never pickle).

Any nested structure of dicts, lists and scalars with torch tensors or numpy arrays in it (a
model state dict, an optimizer or scheduler state dict, RNG states) is split into flat tensor
files (``state-NNNNN.safetensors``, each at most ``SHARD_BYTES``, so that writing never holds
more than one shard's copy in memory) and a JSON skeleton (``state.json``) that points into
them. Reading needs no ``torch.load`` at all. The files go to a temp folder that is renamed
into place, so a crash or a full disk leaves either the previous state or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from tts_host.errors import TTSHostError
from tts_host.oserrors import disk_full_errors

SKELETON = "state.json"
FORMAT = "tts-host-train-state/2"
SHARD_BYTES = 256 * 1024 * 1024


def flatten(value: Any, tensors: dict[str, Any], path: str = "") -> Any:
    """The JSON skeleton of ``value``; tensors and arrays go into ``tensors`` under their path."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        name = path or "root"
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        name = path or "root"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
        return {"__ndarray__": name}
    if isinstance(value, dict):
        keys = list(value)
        return {"__dict__": [[_key(k), flatten(value[k], tensors, f"{path}.{k}" if path else str(k))] for k in keys]}
    if isinstance(value, (list, tuple)):
        items = [flatten(v, tensors, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at '{path}' in a training state")


def unflatten(skeleton: Any, tensors: dict[str, Any]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__ndarray__" in skeleton:
            return tensors[skeleton["__ndarray__"]].numpy()
        if "__tuple__" in skeleton:
            return tuple(unflatten(v, tensors) for v in skeleton["__tuple__"])
        if "__dict__" in skeleton:
            return {_unkey(k): unflatten(v, tensors) for k, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def _key(key: Any) -> list:
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(f"training-state dict keys must be str or int, not {type(key).__name__}")
    return ["int" if isinstance(key, int) else "str", key]


def _unkey(key: list) -> Any:
    return int(key[1]) if key[0] == "int" else key[1]


def _shards(tensors: dict[str, Any]) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    return shards


def save_state(folder: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (see :func:`flatten`) to ``folder`` atomically; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors: dict[str, Any] = {}
    skeleton = flatten(state, tensors)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with disk_full_errors(folder):
            staging.mkdir(parents=True)
            names = []
            for index, shard in enumerate(_shards(tensors)):
                name = f"state-{index:05d}.safetensors"
                save_file(shard, str(staging / name), metadata={"format": FORMAT})
                names.append(name)
            (staging / SKELETON).write_text(json.dumps({"format": FORMAT, "shards": names, "state": skeleton}),
                                            encoding="utf-8")
            for name in [*names, SKELETON]:
                with open(staging / name, "rb") as handle:
                    os.fsync(handle.fileno())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # the previous state, if any, stays as it was
        raise
    previous = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        folder.replace(previous)
    staging.replace(folder)
    shutil.rmtree(previous, ignore_errors=True)
    return folder


def recover(folder: Path) -> None:
    """Put back the previous state when a run died while :func:`save_state` swapped states (between moving
    the previous one aside and moving the new one in, no state is at ``folder``)."""
    previous = folder.with_name(f".{folder.name}.old")
    if not folder.exists() and (previous / SKELETON).is_file():
        previous.replace(folder)


def load_state(folder: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`; a damaged one is a one-line error."""
    from safetensors.torch import load_file

    folder = Path(folder)
    recover(folder)
    with _readable(folder):
        document = _document(folder)
        tensors: dict[str, Any] = {}
        for name in document["shards"]:
            tensors.update(load_file(str(folder / name)))
        return unflatten(document["state"], tensors)


def copy_state_into(folder: Path, targets: dict[str, Any]) -> None:
    """Copy the tensors of a flat state from :func:`save_state` into ``targets`` (e.g. a live ``state_dict()``).

    One tensor is in memory at a time, so restoring a large model's weights needs no second copy of them.
    """
    from safetensors import safe_open

    folder = Path(folder)
    recover(folder)
    with _readable(folder):
        document = _document(folder)
        missing = set(targets)
        for name in document["shards"]:
            with safe_open(str(folder / name), framework="pt") as handle:
                for key in handle.keys():
                    if key not in targets:
                        raise ValueError(f"tensor {key!r} has no place in the model")
                    targets[key].copy_(handle.get_tensor(key))
                    missing.discard(key)
        if missing:
            raise ValueError(f"{len(missing)} tensors are missing, e.g. {sorted(missing)[0]!r}")


def _document(folder: Path) -> dict[str, Any]:
    document = json.loads((folder / SKELETON).read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"unknown format {document.get('format')!r}")
    for name in document["shards"]:
        if Path(name).name != name:
            raise ValueError(f"shard name {name!r} is not a plain file name")
    return document


@contextlib.contextmanager
def _readable(folder: Path) -> Iterator[None]:
    """Turn any failure to read a saved state into a one-line error."""
    try:
        yield
    except (OSError, ValueError, KeyError) as exc:
        raise TTSHostError(f"{folder}: the saved training state cannot be read ({exc}); "
                           "start without --resume") from exc
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise TTSHostError(f"{folder}: the saved training state is damaged ({exc}); start without --resume") from exc


def check_resume(folder: Path, *, resume: bool, restart: bool) -> None:
    """Before a fine-tune loads its model: is ``--resume`` / ``--restart`` right for ``folder``?

    ``--resume`` needs a saved state; without either flag a saved state is refused rather than
    silently thrown away. With ``restart`` the caller discards the saved state.
    """
    if resume and restart:
        raise TTSHostError("give --resume (continue the interrupted run) or --restart (discard it), not both")
    recover(Path(folder))
    saved = (Path(folder) / SKELETON).is_file()
    if resume and not saved:
        raise TTSHostError("there is no interrupted run of this fine-tune to resume (run it without --resume)")
    if saved and not resume and not restart:
        step = _saved_step(Path(folder))
        at = f" at step {step}" if step is not None else ""
        raise TTSHostError(f"an interrupted run of this fine-tune saved its progress{at} in {folder}: "
                           "add --resume to continue it, or --restart to discard it and start again")


def _saved_step(folder: Path) -> int | None:
    """The ``step`` recorded in a saved state's skeleton, without reading its tensors."""
    try:
        pairs = json.loads((folder / SKELETON).read_text(encoding="utf-8"))["state"]["__dict__"]
        return next(int(value) for key, value in pairs if key == ["str", "step"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
