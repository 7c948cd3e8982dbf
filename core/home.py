"""Where the library lives: ``$TTS_HOST_HOME/library`` (default: the user data directory)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "TTS_HOST_HOME"


def default_home() -> Path:
    """``$TTS_HOST_HOME``, else the user data directory of tts-host."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tts-host"))


def index_path(home: Path) -> Path:
    """The SQLite index of the library under ``home``."""
    return home / "library" / "index.sqlite"
