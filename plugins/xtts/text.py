"""What XTTS's text frontend accepts, checked before a model loads, and how a text is cut to fit the GPT.

coqui's ``VoiceBpeTokenizer`` transliterates Chinese with ``pypinyin`` and Japanese with
``cutlet`` (which needs ``fugashi`` and a dictionary); neither comes with coqui-tts itself, so a
model that lists ``zh-cn`` or ``ja`` cannot speak them in an install without those packages.
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

from tts_host.errors import TTSHostError

# language (without region) -> {module: the pip package that provides it}
FRONTEND_PACKAGES = {
    "zh": {"pypinyin": "pypinyin"},
    "ja": {"cutlet": "cutlet", "fugashi": "fugashi", "unidic_lite": "unidic-lite"},
}
DEFAULT_CHAR_LIMIT = 250  # coqui's limit for a language it has no own figure for


def check_language(language: str, supported: Sequence[str]) -> None:
    """Refuse a language the model does not list, or whose text frontend is not installed."""
    if language not in supported and language.split("-")[0] not in supported:
        raise TTSHostError(f"language '{language}' is not supported (supported: {', '.join(supported)})")
    missing = [package for module, package in FRONTEND_PACKAGES.get(language.split("-")[0], {}).items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise TTSHostError(f"language '{language}' needs the Python package(s) {', '.join(missing)}, "
                           f"not installed here: pip install {' '.join(missing)}")
