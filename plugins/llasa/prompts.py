"""Llasa prompts: the chat-template user turn and the start of the assistant turn.

The user turn is ``Convert the text to speech:<|TEXT_UNDERSTANDING_START|>{text}<|TEXT_UNDERSTANDING_END|>``;
the assistant turn starts with ``<|SPEECH_GENERATION_START|>`` (plus, when cloning, the reference
clip's speech tokens). A fine-tuned multi-speaker voice puts its speaker tag before the text.
"""

from __future__ import annotations

from typing import Any, Sequence

from tts_host.plugins.llasa.layout import (
    SPEECH_GENERATION_START,
    TEXT_UNDERSTANDING_END,
    TEXT_UNDERSTANDING_START,
    SpeechLayout,
)

INSTRUCTION = "Convert the text to speech:"


def tagged_text(text: str, speaker: str | None = None) -> str:
    """The text as it goes between the understanding markers, with an optional ``[speaker]`` tag."""
    text = " ".join(text.split())
    return f"[{speaker}] {text}" if speaker else text


def chat(text: str, speaker: str | None = None) -> list[dict[str, str]]:
    """The two chat messages of a Llasa prompt; the assistant message is to be continued."""
    user = f"{INSTRUCTION}{TEXT_UNDERSTANDING_START}{tagged_text(text, speaker)}{TEXT_UNDERSTANDING_END}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": SPEECH_GENERATION_START}]


def prompt_ids(
    tokenizer: Any,
    layout: SpeechLayout,
    text: str,
    *,
    speaker: str | None = None,
    prefix_codes: Sequence[int] = (),
) -> list[int]:
    """Token ids of the prompt, ending with ``<|SPEECH_GENERATION_START|>`` and any prefix speech tokens."""
    encoded = tokenizer.apply_chat_template(chat(text, speaker), tokenize=True, continue_final_message=True)
    ids = list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
    if not ids or ids[-1] != layout.speech_start_id:
        raise ValueError("the chat template does not end the prompt with <|SPEECH_GENERATION_START|>")
    return ids + layout.token_ids(prefix_codes)
