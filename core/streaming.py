"""Streaming that costs what it plays: a vocoder decodes each new window of frames with a little context on
either side, and the joins are cross-faded, so the total decoding work grows with the length of the
speech, not with its square (as re-decoding everything made so far would).

Used by every backend whose acoustic model makes frames (XTTS's GPT latents, Llasa's codec tokens) a few at
a time.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

CONTEXT_FRAMES = 16  # frames decoded before a streamed piece (the vocoder's left context)
HOLDBACK_FRAMES = 8  # frames kept back until more follow (its right context)
FADE_SAMPLES = 256  # cross-fade at each join
GROWTH_CAP = 8  # windows grow to this many times the first one


def window_sizes(first: int) -> Iterator[int]:
    """Frames per streamed window: ``first`` (the time to first audio), then doubling up to ``GROWTH_CAP`` times
    it, so the context each window re-decodes becomes a small share of the work."""
    size = first
    while True:
        yield size
        size = min(size * 2, first * GROWTH_CAP)


def stream_audio(frame_chunks: Iterator[np.ndarray], vocode: Callable[[np.ndarray], np.ndarray],
                 position: Callable[[int], int], autocast: Any = None) -> Iterator[np.ndarray]:
    """Audio pieces for streamed frames (``[1, frames, ...]`` arrays, joined on axis 1): each window decoded
    with context, joins cross-faded.

    ``vocode`` decodes a window of frames; ``position`` says where the audio of frame ``n`` starts in the
    whole speech (samples).
    """
    autocast = autocast or contextlib.nullcontext()
    frames: np.ndarray | None = None
    emitted, written, tail = 0, 0, None  # frames and audio samples handed out so far
    chunks = iter(frame_chunks)
    final = False
    while not final:
        with autocast:
            new = next(chunks, None)
        final = new is None
        if new is not None:
            frames = new if frames is None else np.concatenate([frames, new], axis=1)
        if frames is None:
            return
        total = frames.shape[1]
        end = total if final else total - HOLDBACK_FRAMES
        if end <= emitted:
            continue
        start = max(0, emitted - CONTEXT_FRAMES)
        audio = vocode(frames[:, start:total])
        offset = position(start)  # where the window starts in the whole speech
        begin = min(max(written - offset, 0), len(audio))
        stop = len(audio) if final else min(len(audio), max(begin, position(end) - offset))
        piece = np.array(audio[begin:stop], dtype=np.float32)
        if tail is not None:
            n = min(len(tail), len(piece))
            weight = np.linspace(0.0, 1.0, n, dtype=np.float32)
            piece[:n] = tail[:n] * (1.0 - weight) + piece[:n] * weight
        tail = None if final else audio[stop:stop + FADE_SAMPLES]
        emitted, written = end, written + len(piece)
        if len(piece):
            yield piece
