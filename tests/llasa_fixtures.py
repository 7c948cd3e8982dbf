"""Shared helpers for the Llasa tests: one tiny random base per session, copied where a test edits it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}


def tiny_base_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llasa base built once per session (read it, never modify it: copy it first)."""
    if "tiny" not in _BUILT:
        from tts_host.plugins.llasa.base import init_base

        _BUILT["tiny"] = init_base("tiny", tmp_path_factory.mktemp("llasa") / "tiny-base", seed=0)
    return _BUILT["tiny"]


def copy_base(base: Path, dest: Path) -> Path:
    """A private copy of ``base`` that a test may damage."""
    shutil.copytree(base, dest)
    return dest


@pytest.fixture
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny Llasa base folder (model/ + codec/)."""
    return tiny_base_path(tmp_path_factory)


def prepared_speaker(tmp_path_factory: pytest.TempPathFactory, speaker_clips, speaker: str, count: int = 8):
    """A prepared 16 kHz dataset of ``count`` espeak-ng clips of ``speaker`` (built once per session)."""
    key = f"data-{speaker}-{count}"
    if key not in _BUILT:
        from tts_host.data import prepare_dataset

        clips = speaker_clips(speaker, count)
        out = tmp_path_factory.mktemp("llasa-data") / speaker
        prepare_dataset(clips[0][0].parent, out, speaker, 16000)
        _BUILT[key] = out
    from tts_host.data import load_prepared

    return load_prepared(_BUILT[key])


def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    """One feature cache for the session, so each clip is encoded by the codec once."""
    from tts_host.data import FeatureCache

    if "cache" not in _BUILT:
        _BUILT["cache"] = tmp_path_factory.mktemp("llasa-features")
    return FeatureCache(_BUILT["cache"])


def base_rows(tokenizer, layout, clips, base: Path, **options):
    """``dataset_rows`` of ``clips`` with the codec of base folder ``base`` (built only if a clip is not cached)."""
    from tts_host.hashing import sha256_file
    from tts_host.plugins.llasa.codec import codec_component
    from tts_host.plugins.llasa.data import dataset_rows

    sha = sha256_file(base / "codec" / "model.safetensors")[0]
    return dataset_rows(tokenizer, layout, clips, sha, codec=lambda: codec_component(base), **options)
