"""What every backend's speech shares: how much audio a text may become.

An autoregressive model stops when it samples its end token. A barely trained or unlucky
model may never sample it, and would then generate to its context limit: minutes of noise
for a three-word request, and (with coqui's streaming) minutes of wall time. Every backend
therefore bounds the audio tokens it samples by the text's length.
"""

from __future__ import annotations

import math

# Slow, careful speech runs at about 10 characters a second (English at 140 words a minute)
# and Chinese at about 4 characters a second; 0.3 s a character leaves room for both, and the
# fixed allowance covers a short word said slowly with its pauses.
SECONDS_PER_CHARACTER = 0.3
FIXED_SECONDS = 2.0


def speech_seconds_limit(text: str) -> float:
    """The longest speech ``text`` can reasonably need, in seconds."""
    return FIXED_SECONDS + SECONDS_PER_CHARACTER * len(" ".join(text.split()))


def audio_token_budget(text: str, tokens_per_second: float, ceiling: int) -> int:
    """How many audio tokens a model that makes ``tokens_per_second`` may sample for ``text``.

    Never more than ``ceiling`` (the model's own limit), never fewer than one second's worth.
    """
    wanted = math.ceil(tokens_per_second * speech_seconds_limit(text))
    return max(1, min(ceiling, max(wanted, math.ceil(tokens_per_second))))
