"""Process one source file: decode in blocks, slice or trim, measure, filter, normalise, write clips.

Memory stays bounded by the longest clip: the first pass streams the file into a 10 ms energy
envelope, the second reads back only the ranges that become clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tts_host.data import quality
from tts_host.data.audio import AudioReader, resample, write_clip
from tts_host.data.dataset import Reject
from tts_host.data.errors import AudioDecodeError
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
    """Run one job; every problem becomes a reject with a one-line detail, never an exception."""
    result = JobResult(job.item.name)
    try:
        _process(job, result, progress or (lambda seconds: None))
    except AudioDecodeError as exc:
        reason = "empty_file" if "empty file (0 bytes)" in str(exc) else "undecodable"
        result.rejects.append(Reject(job.item.name, reason, str(exc)))
    return result


def _process(job: Job, result: JobResult, progress: Callable[[float], None]) -> None:
    settings, name = job.settings, job.item.name
    reader = AudioReader(job.item.audio)
    rate = reader.info.sample_rate
    hop = max(1, round(rate * quality.FRAME_SECONDS))
    frame_seconds = hop / rate
    result.seconds = reader.info.duration
    envelope = quality.Envelope(hop)
    for block in reader.blocks():
        envelope.add(block)
        progress(len(block) / rate / 2)
    power, clipped = envelope.finish()
    whole = Reject(name, "", "", 0.0, reader.info.duration)
    if envelope.non_finite:
        result.rejects.append(_with(whole, "non_finite", f"{envelope.non_finite} NaN/Inf samples"))
        return
    db = quality.to_db(power)
    if not len(db) or db.max() <= quality.to_db(np.array([quality.FLOOR_POWER]))[0]:
        result.rejects.append(_with(whole, "silent", "the file is digital silence"))
        return
    relative = db - db.max()
    if job.item.text is None:
        spans = slice_spans(relative, settings, frame_seconds)
    else:
        trimmed = trim_span(relative, settings, frame_seconds)
        spans = [trimmed] if trimmed else []
    if not spans:
        result.rejects.append(_with(whole, "silent", f"no frame above silence_db {settings.silence_db:g} dB"))
        return
    reported = 0.0
    for index, span in enumerate(spans):
        start, end = span.start * frame_seconds, min(span.end * frame_seconds, reader.info.duration)
        clip_id = f"{job.clip_id}_{index:03d}" if job.item.text is None else job.clip_id
        scores = {"speech_ratio": round(quality.speech_ratio(relative[span.start:span.end], settings.silence_db), 4),
                  "snr_db": round(quality.snr_db(power[span.start:span.end], relative[span.start:span.end],
                                                 settings.silence_db), 2),
                  "clipped_fraction": round(float(clipped[span.start:span.end].sum()) / max(1, (span.end - span.start) * hop), 6)}
        segment_reject = Reject(name, span.reason, span.detail, round(start, 3), round(end, 3), scores)
        if span.reason:
            result.rejects.append(segment_reject)
        else:
            audio = reader.read(span.start * hop, min(span.end * hop, reader.info.frames))
            record = _clip(job, clip_id, audio, rate, start, end, scores, segment_reject, result)
            if record:
                result.clips.append(record)
        progress(end / 2 - reported)
        reported = end / 2
    progress(reader.info.duration / 2 - reported)


def _with(reject: Reject, reason: str, detail: str) -> Reject:
    return Reject(reject.source, reason, detail, reject.start, reject.end, reject.scores)


def _clip(job: Job, clip_id: str, audio: np.ndarray, rate: int, start: float, end: float,
          scores: dict[str, float], reject: Reject, result: JobResult) -> dict[str, Any] | None:
    """Measure, filter, normalise and write one span; returns its record or adds a reject."""
    settings = job.settings
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
            result.rejects.append(_with(reject, reason, detail))
            return None
    audio = audio * np.float32(settings.peak / peak)
    path, digest = write_clip(job.wav_dir, clip_id, audio, settings.sample_rate)
    stat = path.stat()
    return {
        "id": clip_id, "audio_path": path, "text": job.item.text or "", "duration": round(len(audio) / settings.sample_rate, 4),
        "speaker": job.speaker, "language": job.item.language, "sha256": digest, "source": job.item.name,
        "start": round(start, 3), "end": round(end, 3), "sliced": job.item.text is None, "scores": scores,
        "file_stat": [stat.st_size, stat.st_mtime_ns],
    }
