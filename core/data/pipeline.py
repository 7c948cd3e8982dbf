"""Process one source file: decode in blocks, slice or trim, measure, filter, normalise, write clips.

Memory stays bounded by the longest clip: the first pass (:func:`plan`) streams the file into a
10 ms energy envelope and cuts it into pieces, the second (:func:`render`) reads back only the
pieces' ranges. Pieces of one long file may be rendered by several processes at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tts_host.data import quality
from tts_host.data.audio import AudioReader, resample, write_clip
from tts_host.data.dataset import Reject
from tts_host.data.errors import AudioDecodeError, EmptyAudioError
from tts_host.data.ingest import SourceItem
from tts_host.data.settings import DataSettings
from tts_host.data.slicer import Span, slice_spans, trim_span


@dataclass
class Job:
    """One source file to process and where its clips go."""

    item: SourceItem
    clip_id: str  # base id; sliced clips append _000, _001, ...
    speaker: str
    wav_dir: Path
    settings: DataSettings


@dataclass
class JobResult:
    """Clip records (manifest fields less the split) and rejects of one source file."""

    name: str
    seconds: float = 0.0  # duration of the source file
    clips: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


@dataclass(frozen=True)
class Piece:
    """One span of a planned file: kept spans are rendered into clips, rejected ones are already judged."""

    index: int
    start_frame: int  # at the source's own rate
    stop_frame: int
    reject: Reject  # carries the span's times and envelope scores; reason "" for a span to render


@dataclass
class Plan:
    """Pass 1 of a job: the file's rejects so far, and the pieces still to render."""

    result: JobResult
    pieces: list[Piece] = field(default_factory=list)


Progress = Callable[[float], None]


def process(job: Job, progress: Progress | None = None) -> JobResult:
    """Plan and render one job in this process (see :func:`plan` and :func:`render`)."""
    progress = progress or (lambda seconds: None)
    planned = plan(job, progress)
    return merge(planned, [render(job, planned.pieces, progress)])


def plan(job: Job, progress: Progress) -> Plan:
    """Pass 1: stream the file into its envelope and cut it into pieces; file problems become rejects.

    Reports half of the file's duration, plus the half of the audio outside every piece, as progress.
    """
    result = JobResult(job.item.name)
    try:
        return _plan(job, result, progress)
    except AudioDecodeError as exc:
        reason = "empty_file" if isinstance(exc, EmptyAudioError) else "undecodable"
        result.rejects.append(Reject(job.item.name, reason, str(exc)))
        return Plan(result)


def _plan(job: Job, result: JobResult, progress: Progress) -> Plan:
    settings, name = job.settings, job.item.name
    reader = AudioReader(job.item.audio)
    rate, duration = reader.info.sample_rate, reader.info.duration
    hop = max(1, round(rate * quality.FRAME_SECONDS))
    frame_seconds = hop / rate
    result.seconds = duration
    envelope = quality.Envelope(hop)
    for block in reader.blocks():
        envelope.add(block)
        progress(len(block) / rate / 2)
    power, clipped = envelope.finish()
    problem = _whole_file_problem(envelope.non_finite, power)
    if not problem:
        level = quality.to_db(power)
        relative = level - level.max()
        spans = _spans(job, relative, frame_seconds)
        if not spans:
            problem = ("silent", f"no frame above silence_db {settings.silence_db:g} dB")
    if problem:
        result.rejects.append(Reject(name, problem[0], problem[1], 0.0, round(duration, 3)))
        progress(duration / 2)
        return Plan(result)
    planned = Plan(result)
    for index, span in enumerate(spans):
        start, end = span.start * frame_seconds, min(span.end * frame_seconds, duration)
        scores = _envelope_scores(power[span.start:span.end], relative[span.start:span.end],
                                  clipped[span.start:span.end], hop, settings)
        reject = Reject(name, span.reason, span.detail, round(start, 3), round(end, 3), scores)
        planned.pieces.append(Piece(index, span.start * hop, min(span.end * hop, reader.info.frames), reject))
    progress((duration - sum(piece.reject.duration for piece in planned.pieces)) / 2)
    return planned


def render(job: Job, pieces: list[Piece], progress: Progress) -> list[tuple[int, dict[str, Any] | None, Reject | None]]:
    """Pass 2: ``(piece index, clip record, reject)`` for each piece, reading only the pieces' ranges.

    Reports half of each piece's duration as progress.
    """
    outcomes: list[tuple[int, dict[str, Any] | None, Reject | None]] = []
    if not pieces:
        return outcomes
    try:
        reader = AudioReader(job.item.audio)
        for piece in pieces:
            if piece.reject.reason:
                outcomes.append((piece.index, None, piece.reject))
            else:
                clip_id = f"{job.clip_id}_{piece.index:03d}" if job.item.text is None else job.clip_id
                audio = reader.read(piece.start_frame, piece.stop_frame)
                outcomes.append((piece.index, *_clip(job, clip_id, audio, reader.info.sample_rate, piece.reject)))
            progress(piece.reject.duration / 2)
    except AudioDecodeError as exc:  # the file changed or broke between the passes
        done = {index for index, _, _ in outcomes}
        outcomes += [(piece.index, None, replace(piece.reject, reason="undecodable", detail=str(exc)))
                     for piece in pieces if piece.index not in done]
    return outcomes


def merge(planned: Plan, rendered: list[list[tuple[int, dict[str, Any] | None, Reject | None]]]) -> JobResult:
    """The job's result: file-level rejects, then each piece's clip or reject in piece order."""
    result = planned.result
    for _, record, reject in sorted((outcome for part in rendered for outcome in part), key=lambda o: o[0]):
        if record is not None:
            result.clips.append(record)
        if reject is not None:
            result.rejects.append(reject)
    return result


def _whole_file_problem(non_finite: int, power: np.ndarray) -> tuple[str, str] | None:
    """``(reason, detail)`` when the whole file is unusable: NaN/Inf samples or digital silence."""
    if non_finite:
        return "non_finite", f"{non_finite} NaN/Inf samples"
    if not len(power) or power.max() <= quality.FLOOR_POWER:
        return "silent", "the file is digital silence"
    return None


def _spans(job: Job, relative_db: np.ndarray, frame_seconds: float) -> list[Span]:
    """Slices of an untranscribed file; the trimmed whole of a transcribed one."""
    if job.item.text is None:
        return slice_spans(relative_db, job.settings, frame_seconds)
    trimmed = trim_span(relative_db, job.settings, frame_seconds)
    return [trimmed] if trimmed else []


def _envelope_scores(power: np.ndarray, relative_db: np.ndarray, clipped: np.ndarray, hop: int,
                     settings: DataSettings) -> dict[str, float]:
    """Speech ratio, SNR and clipped fraction of one span, from the envelope of the source."""
    return {
        "speech_ratio": round(quality.speech_ratio(relative_db, settings.silence_db), 4),
        "snr_db": round(quality.snr_db(power, relative_db, settings.silence_db), 2),
        "clipped_fraction": round(float(clipped.sum()) / max(1, len(clipped) * hop), 6),
    }


def _clip(job: Job, clip_id: str, audio: np.ndarray, rate: int,
          reject: Reject) -> tuple[dict[str, Any] | None, Reject | None]:
    """Resample, measure, filter, normalise and write one span: ``(record, None)`` or ``(None, reject)``."""
    settings, scores = job.settings, dict(reject.scores)
    audio = resample(audio, rate, settings.sample_rate)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    scores["spectral_entropy"] = round(quality.spectral_entropy(audio, settings.sample_rate, settings.silence_db), 4)
    checks = [
        ("clipping", scores["clipped_fraction"] > settings.max_clipped_fraction,
         f"{scores['clipped_fraction']:.4f} of samples at full scale > max_clipped_fraction {settings.max_clipped_fraction:g}"),
        ("low_speech_ratio", scores["speech_ratio"] < settings.min_speech_ratio,
         f"speech ratio {scores['speech_ratio']:.2f} < min_speech_ratio {settings.min_speech_ratio:g}"),
        ("low_snr", scores["snr_db"] < settings.min_snr_db,
         f"SNR {scores['snr_db']:.1f} dB < min_snr_db {settings.min_snr_db:g}"),
        ("high_spectral_entropy", scores["spectral_entropy"] > settings.max_spectral_entropy,
         f"spectral entropy {scores['spectral_entropy']:.3f} > max_spectral_entropy {settings.max_spectral_entropy:g}"),
    ]
    for reason, failed, detail in checks:
        if failed:
            return None, replace(reject, reason=reason, detail=detail, scores=scores)
    audio = audio * np.float32(settings.peak / peak)
    path, digest = write_clip(job.wav_dir, clip_id, audio, settings.sample_rate)
    stat = path.stat()
    return {
        "id": clip_id, "audio_path": path, "text": job.item.text or "", "duration": round(len(audio) / settings.sample_rate, 4),
        "speaker": job.speaker, "language": job.item.language, "sha256": digest, "source": job.item.name,
        "start": reject.start, "end": reject.end, "sliced": job.item.text is None, "scores": scores,
        "file_stat": [stat.st_size, stat.st_mtime_ns],
    }, None
