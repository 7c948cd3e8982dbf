"""Errors of the dataset pipeline, each one clear line for the user."""

from __future__ import annotations

from tts_host.errors import TTSHostError


class DatasetError(TTSHostError):
    """A dataset cannot be read, prepared or loaded (bad source, bad manifest, bad settings)."""


class AudioDecodeError(DatasetError):
    """An audio file cannot be decoded; the message says which file and why."""


class EmptyAudioError(AudioDecodeError):
    """An audio file has no bytes at all."""


class DiskFullError(DatasetError):
    """The disk or the user's quota filled up while writing; the message names the file and the free space."""
