"""Names of voices, bases and speakers: safe in paths, tables and archives."""

from __future__ import annotations

import unicodedata

from tts_host.errors import TTSHostError

MAX_NAME_LENGTH = 64


class InvalidNameError(TTSHostError):
    """A name that the library refuses."""


def check_name(name: str, kind: str = "voice") -> str:
    """Return ``name`` if it is a valid library name, else raise a one-line error.

    Unicode letters, digits, spaces and punctuation are allowed; path separators, ``..``,
    control and format characters, leading or trailing spaces and more than
    ``MAX_NAME_LENGTH`` characters are not.
    """
    shown = ascii(name) if isinstance(name, str) else repr(name)
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{kind} name {shown} is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"{kind} name {shown[:40]}... is {len(name)} characters long (at most {MAX_NAME_LENGTH})")
    if "/" in name or "\\" in name:
        raise InvalidNameError(f"{kind} name {shown} contains a path separator")
    if ".." in name or name == ".":
        raise InvalidNameError(f"{kind} name {shown} contains '..' or is '.'")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidNameError(f"{kind} name {shown} contains a control character (U+{ord(char):04X})")
    if name != name.strip():
        raise InvalidNameError(f"{kind} name {shown} starts or ends with a space")
    return unicodedata.normalize("NFC", name)
