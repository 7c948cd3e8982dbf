"""Consent on record: where a cloned or fine-tuned voice's audio came from, the speaker's consent statement,
and optionally a recording of the speaker giving it. Stored with the voice as its files ``consent.json``
(role ``consent``) and ``consent/recording.<ext>`` (role ``consent:recording``), so archives and exports
carry them; ``voices show`` and the server's voice listing show them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.speakers.library import Library
    from tts_host.speakers.records import Voice

ROLE, RECORDING_ROLE = "consent", "consent:recording"
PATH = "consent.json"
MAX_STATEMENT = 2000


@dataclass(frozen=True)
class Consent:
    """A speaker's consent: the statement, where the voice's audio came from, an optional recording of it."""

    statement: str
    source: str = ""
    recording: Path | None = None

    def __post_init__(self) -> None:
        if not self.statement.strip():
            raise TTSHostError("--consent: give the speaker's consent statement (non-empty text)")
        if len(self.statement) > MAX_STATEMENT:
            raise TTSHostError(f"--consent: {len(self.statement)} characters; at most {MAX_STATEMENT}")
        if self.recording is not None:
            from tts_host.speech import check_references

            check_references([Path(self.recording)])

    def files(self, folder: Path) -> dict[str, tuple[str, Path]]:
        """The voice files to store, written into ``folder``: role -> (path in the voice, file)."""
        document = {"statement": self.statement.strip(), "source": self.source.strip(),
                    "recording": None, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        files: dict[str, tuple[str, Path]] = {}
        if self.recording is not None:
            suffix = Path(self.recording).suffix.lower() if Path(self.recording).suffix[1:].isalnum() else ".bin"
            document["recording"] = f"consent/recording{suffix}"
            files[RECORDING_ROLE] = (document["recording"], Path(self.recording))
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / PATH
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        files[ROLE] = (PATH, path)
        return files


def consent_of(library: Library, voice: Voice) -> dict[str, Any] | None:
    """The voice's consent record (``statement``, ``source``, ``recording``, ``recorded_at``), or ``None``."""
    entry = next((f for f in library.files_of(voice) if f.role == ROLE), None)
    if entry is None:
        return None
    try:
        return json.loads(library.blob_path(entry.sha256).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TTSHostError(f"voice '{voice.name}': its consent.json cannot be read ({exc}); `voices repair`") from exc


def set_consent(library: Library, name: str, consent: Consent) -> Voice:
    """Put ``consent`` on record for the existing voice ``name``, replacing the record (and recording) it had."""
    import tempfile

    voice = library.voice(name)
    with tempfile.TemporaryDirectory(prefix="tts-host-consent-") as folder:
        files = consent.files(Path(folder))
        return library.set_voice_files(voice.name, files, remove=[RECORDING_ROLE])
