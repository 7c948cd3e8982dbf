"""Hugging Face libraries used quietly: tts-host shows its own progress."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Silence transformers' progress bars and info logging."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
