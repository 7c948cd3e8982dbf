"""Process one source file: decode in blocks, slice or trim, measure, filter, normalise, write clips.

Memory stays bounded by the longest clip: the first pass streams the file into a 10 ms energy
envelope, the second reads back only the ranges that become clips.
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


def process(job: Job, progress: Callable[[float], None] | None = None) -> JobResult:
    """Run one job; every problem with the file becomes a reject with a one-line detail."""
    result = JobResult(job.item.name)
    try:
        _process(job, result, progress or (lambda seconds: None))
    except AudioDecodeError as exc:
        reason = "empty_file" if isinstance(exc, EmptyAudioError) else "undecodable"
        result.rejects.append(Reject(job.item.name, reason, str(exc)))
    return result


def _process(job: Job, result: JobResult, progress: Callable[[float], None]) -> None:
    """Pass 1 streams the envelope; pass 2 reads, checks and writes each span that slicing kept."""
    settings, name = job.settings, job.item.name
    reader = AudioReader(job.item.audio)
    rate, duration = reader.info.sample_rate, reader.info.duration
    hop = max(1, round(rate * quality.FRAME_SECONDS))
    frame_seconds = hop / rate
    result.seconds = duration
    envelope = quality.Envelope(hop)
    for block in reader.blocks():  # the first half of the progress: decoding
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
        return
    reported = 0.0
    for index, span in enumerate(spans):  # the second half of the progress: clips up to each span's end
        start, end = span.start * frame_seconds, min(span.end * frame_seconds, duration)
        scores = _envelope_scores(power[span.start:span.end], relative[span.start:span.end],
                                  clipped[span.start:span.end], hop, settings)
        reject = Reject(name, span.reason, span.detail, round(start, 3), round(end, 3), scores)
        if span.reason:
            result.rejects.append(reject)
        else:
            clip_id = f"{job.clip_id}_{index:03d}" if job.item.text is None else job.clip_id
            audio = reader.read(span.start * hop, min(span.end * hop, reader.info.frames))
            record = _clip(job, clip_id, audio, rate, reject, result)
            if record:
                result.clips.append(record)
        progress(end / 2 - reported)
        reported = end / 2
    progress(duration / 2 - reported)


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


def _clip(job: Job, clip_id: str, audio: np.ndarray, rate: int, reject: Reject,
          result: JobResult) -> dict[str, Any] | None:
    """Resample, measure, filter, normalise and write one span; returns its record or adds a reject."""
    settings, scores = job.settings, reject.scores
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
            result.rejects.append(replace(reject, reason=reason, detail=detail))
            return None
    audio = audio * np.float32(settings.peak / peak)
    path, digest = write_clip(job.wav_dir, clip_id, audio, settings.sample_rate)
    stat = path.stat()
    return {
        "id": clip_id, "audio_path": path, "text": job.item.text or "", "duration": round(len(audio) / settings.sample_rate, 4),
        "speaker": job.speaker, "language": job.item.language, "sha256": digest, "source": job.item.name,
        "start": reject.start, "end": reject.end, "sliced": job.item.text is None, "scores": scores,
        "file_stat": [stat.st_size, stat.st_mtime_ns],
    }
