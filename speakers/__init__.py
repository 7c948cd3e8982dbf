"""The voice library: a verified, crash-safe, content-addressed speaker registry.

``Library`` (in :mod:`tts_host.speakers.library`) is the Python API; records are plain
frozen dataclasses (:class:`Base`, :class:`Checkpoint`, :class:`Voice`, :class:`FileEntry`).
See ``docs/library.md`` for the layout, the guarantees and the commands.
"""

from tts_host.speakers.library import Library, Problem, default_home
from tts_host.speakers.names import InvalidNameError, check_name
from tts_host.speakers.records import Base, Checkpoint, FileEntry, Voice

__all__ = ["Base", "Checkpoint", "FileEntry", "InvalidNameError", "Library", "Problem", "Voice", "check_name",
           "default_home"]
