"""A voice's own speech settings: its default speech precision, used when a request names none.

Stored with the voice as its file ``speech.json`` (role ``speech``), e.g. ``{"precision": "int8"}``,
so archives carry it; ``tts-host voices set NAME --precision P`` writes it, ``voices show`` shows it,
and ``speak`` and the server use it (:func:`tts_host.synthesis.plan_speech`). Reading it needs no torch.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Voice

ROLE = "speech"
PATH = "speech.json"


def speech_settings(library: Library, voice: Voice) -> dict[str, Any]:
    """The voice's stored speech settings (empty when it has none)."""
    entry = next((f for f in voice.files if f.role == ROLE), None)
    if entry is None:
        return {}
    try:
        settings = json.loads(library.blob_path(entry.sha256).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TTSHostError(f"{voice.label}: its {PATH} cannot be read ({exc}); `voices repair`") from exc
    if not isinstance(settings, dict):
        raise TTSHostError(f"{voice.label}: its {PATH} is not a JSON object")
    return settings


def speech_precision(library: Library, voice: Voice) -> str | None:
    """The voice's default speech precision, or ``None`` when it has none."""
    from tts_host.contract import check_precision

    precision = speech_settings(library, voice).get("precision")
    return None if precision is None else check_precision(precision, f"{voice.label}'s {PATH} precision")


def set_speech_precision(library: Library, name: str, precision: str) -> Voice:
    """Make ``precision`` voice ``name``'s default speech precision, refused if its backend cannot speak in it."""
    from tts_host.contract import check_precision
    from tts_host.synthesis import check_backend_precision

    check_precision(precision, "--precision")
    voice = library.voice(name)
    check_backend_precision(library.backend(voice.backend), precision)
    settings = {**speech_settings(library, voice), "precision": precision}
    with tempfile.TemporaryDirectory(prefix="tts-host-voice-") as folder:
        path = Path(folder) / PATH
        path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return library.set_voice_files(voice.name, {ROLE: (PATH, path)})
