"""Per-clip feature cache: deterministic features stored as safetensors, keyed by content.

A key is the SHA-256 of (audio content hash, producer id, parameters). The producer id names
the component and the hash of its weights, so new weights or new parameters never reuse old
features. Every entry carries a checksum of its arrays in the safetensors metadata; an entry
that fails to parse or to match its checksum is deleted and recomputed, never returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from tts_host.data.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

FORMAT = "tts-host-features/1"
def default_cache_root() -> Path:
    """Where features live unless told otherwise: ``$TTS_HOST_HOME/cache/features``."""
    from tts_host.home import default_home

    return default_home() / "cache" / "features"


def producer_id(component: str, weights_sha256: str) -> str:
    """The producer part of a key: a component's name and the hash of the weights it ran with."""
    return f"{component}@{weights_sha256}"


def cache_key(audio_sha256: str, producer: str, params: Mapping[str, Any]) -> str:
    """SHA-256 naming one entry; ``params`` must be JSON-serialisable (sorted, so order never matters)."""
    try:
        encoded = json.dumps({"audio": audio_sha256, "producer": producer, "params": params},
                             sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise DatasetError(f"feature cache parameters must be JSON values: {exc}") from None
    return hashlib.sha256(encoded.encode()).hexdigest()


def arrays_checksum(arrays: Mapping[str, "np.ndarray"]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


@dataclass
class CacheStats:
    """What a :class:`FeatureCache` did: entries served, computed, and found corrupt."""

    hits: int = 0
    computed: int = 0
    corrupt: int = 0


class FeatureCache:
    """Content-addressed feature store; ``get_or_compute`` is the one call a backend needs."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.stats = CacheStats()

    def path_for(self, key: str) -> Path:
        """File of one entry: ``root/<first two hex digits>/<key>.safetensors``."""
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, audio_sha256: str, producer: str, params: Mapping[str, Any]) -> dict[str, "np.ndarray"] | None:
        """The stored arrays, or None when absent or corrupt (a corrupt entry is deleted)."""
        key = cache_key(audio_sha256, producer, params)
        arrays = self._read(self.path_for(key), key)
        if arrays is not None:
            self.stats.hits += 1
        return arrays

    def put(self, audio_sha256: str, producer: str, params: Mapping[str, Any],
            arrays: Mapping[str, "np.ndarray"]) -> Path:
        """Store ``arrays`` atomically (temp file, fsync, rename); returns the entry's path."""
        import numpy as np
        from safetensors.numpy import save_file

        key = cache_key(audio_sha256, producer, params)
        if not isinstance(arrays, Mapping) or not arrays:
            raise DatasetError(f"feature producer {producer} must return a non-empty dict of arrays")
        clean = {}
        for name, array in arrays.items():
            if not isinstance(name, str) or not isinstance(array, np.ndarray):
                raise DatasetError(f"feature producer {producer} returned {name!r}: expected str -> numpy array")
            clean[name] = np.ascontiguousarray(array)
        metadata = {"format": FORMAT, "key": key, "audio_sha256": audio_sha256, "producer": producer,
                    "params": json.dumps(params, sort_keys=True), "checksum": arrays_checksum(clean)}
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
        os.close(handle)
        try:
            save_file(clean, temp, metadata=metadata)
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path

    def get_or_compute(self, audio_sha256: str, producer: str, params: Mapping[str, Any],
                       compute: Callable[[], Mapping[str, "np.ndarray"]]) -> dict[str, "np.ndarray"]:
        """Cached arrays for this clip, producer and parameters; ``compute()`` runs only on a miss."""
        cached = self.get(audio_sha256, producer, params)
        if cached is not None:
            return cached
        arrays = compute()
        self.put(audio_sha256, producer, params, arrays)
        self.stats.computed += 1
        return {name: arrays[name] for name in arrays}

    def _read(self, path: Path, key: str) -> dict[str, "np.ndarray"] | None:
        if not path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}
            valid = (metadata.get("format") == FORMAT and metadata.get("key") == key
                     and metadata.get("checksum") == arrays_checksum(arrays))
        except Exception:  # any parse failure means a damaged entry: recompute, never trust it
            valid = False
        if not valid:
            self.stats.corrupt += 1
            path.unlink(missing_ok=True)
            return None
        return arrays
