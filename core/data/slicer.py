"""Slicing and trimming on the 10 ms energy envelope: cuts fall only inside pauses, never in speech."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tts_host.data.settings import DataSettings

FALLBACK_GAP_SECONDS = 0.08  # shortest silent gap cut in when speech runs past max_seconds without a pause


@dataclass(frozen=True)
class Span:
    """A frame range ``[start, end)`` of the envelope, kept or rejected with a reason."""

    start: int
    end: int
    reason: str = ""
    detail: str = ""


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def speech_islands(relative_db: np.ndarray, settings: DataSettings, frame_seconds: float) -> list[tuple[int, int]]:
    """Speech regions, merged across pauses shorter than ``min_silence_seconds``.

    A region longer than ``max_seconds`` is split again at its shorter silent gaps (at least
    ``FALLBACK_GAP_SECONDS``, the pause between words), so fast speech can still be cut in silence.
    """
    runs = _runs(relative_db > settings.silence_db)
    max_frames = settings.max_seconds / frame_seconds
    islands = []
    for start, end in _merged(runs, max(1, round(settings.min_silence_seconds / frame_seconds))):
        if end - start <= max_frames:
            islands.append((start, end))
        else:
            inside = [(a, b) for a, b in runs if start <= a and b <= end]
            islands += _merged(inside, max(1, round(FALLBACK_GAP_SECONDS / frame_seconds)))
    return islands


def _merged(runs: list[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    """``runs`` with those separated by fewer than ``min_gap`` frames joined."""
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < min_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def slice_spans(relative_db: np.ndarray, settings: DataSettings, frame_seconds: float) -> list[Span]:
    """Segments of a long untranscribed recording within [min, max] seconds, cut only in pauses.

    Consecutive speech islands join into one segment while it stays within ``max_seconds``; a pause
    of ``split_silence_seconds`` or more always ends a segment. Each cut keeps up to
    ``margin_seconds`` of silence (at most half the pause) on either side.
    """
    islands = speech_islands(relative_db, settings, frame_seconds)
    total = len(relative_db)
    margin = round(settings.margin_seconds / frame_seconds)
    split_gap = round(settings.split_silence_seconds / frame_seconds)
    max_frames = settings.max_seconds / frame_seconds

    def padded(first: int, last: int) -> tuple[int, int]:
        before = islands[first][0] - (islands[first - 1][1] if first else 0)
        after = (islands[last + 1][0] if last + 1 < len(islands) else total) - islands[last][1]
        left = min(margin, before // 2 if first else before)
        right = min(margin, after // 2 if last + 1 < len(islands) else after)
        return islands[first][0] - left, islands[last][1] + right

    spans: list[Span] = []
    first = 0
    while first < len(islands):
        last = first
        while last + 1 < len(islands):
            gap = islands[last + 1][0] - islands[last][1]
            start, end = padded(first, last + 1)
            if gap >= split_gap or end - start > max_frames:
                break
            last += 1
        spans.append(_judged(*padded(first, last), settings, frame_seconds, sliced=True))
        first = last + 1
    return spans


def trim_span(relative_db: np.ndarray, settings: DataSettings, frame_seconds: float) -> Span | None:
    """The whole file less its leading and trailing silence (keeping the margins); None if all silent."""
    speech = np.flatnonzero(relative_db > settings.silence_db)
    if not len(speech):
        return None
    margin = round(settings.margin_seconds / frame_seconds)
    start = max(0, int(speech[0]) - margin)
    end = min(len(relative_db), int(speech[-1]) + 1 + margin)
    return _judged(start, end, settings, frame_seconds, sliced=False)


def _judged(start: int, end: int, settings: DataSettings, frame_seconds: float, *, sliced: bool) -> Span:
    seconds = (end - start) * frame_seconds
    if seconds < settings.min_seconds:
        return Span(start, end, "too_short", f"{seconds:.2f} s < min_seconds {settings.min_seconds:g}")
    if sliced and seconds > settings.max_seconds:
        return Span(start, end, "no_pause",
                    f"{seconds:.2f} s of speech without a pause of {settings.min_silence_seconds:g} s to cut at")
    if not sliced and seconds > settings.max_whole_seconds:
        return Span(start, end, "too_long", f"{seconds:.2f} s > max_whole_seconds {settings.max_whole_seconds:g}; "
                    "its transcript covers the whole file, so it is not sliced")
    return Span(start, end)
