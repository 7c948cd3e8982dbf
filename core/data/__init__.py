"""Audio datasets: ingest, clean, slice, filter, split and cache a speaker's recordings for any backend.

The API backends use (imported lazily, so importing this package stays cheap)::

    prepare_dataset(source, out_dir, speaker, sample_rate, ...) -> PreparedDataset
    load_prepared(out_dir) -> PreparedDataset      # .train / .heldout: lists of Clip
    FeatureCache(root=None).get_or_compute(audio_sha256, producer_id, params, compute) -> dict of arrays
    load_settings(config, backend=..., preset=..., overrides=...) -> DataSettings
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "prepare_dataset": "tts_host.data.prepare",
    "load_prepared": "tts_host.data.dataset",
    "PreparedDataset": "tts_host.data.dataset",
    "Clip": "tts_host.data.dataset",
    "Reject": "tts_host.data.dataset",
    "REASONS": "tts_host.data.dataset",
    "FeatureCache": "tts_host.data.cache",
    "producer_id": "tts_host.data.cache",
    "default_cache_root": "tts_host.data.cache",
    "DataSettings": "tts_host.data.settings",
    "load_settings": "tts_host.data.settings",
    "default_settings": "tts_host.data.settings",
    "read_audio": "tts_host.data.audio",
    "DatasetError": "tts_host.data.errors",
    "AudioDecodeError": "tts_host.data.errors",
    "DiskFullError": "tts_host.data.errors",
    "build_report": "tts_host.data.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tts_host.data' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
