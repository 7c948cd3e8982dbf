"""Decoding, resampling and writing audio: mono float32, streamed in blocks, soxr HQ resampling.

wav, flac, ogg (Vorbis/Opus), mp3 and aiff decode through libsndfile (bundled with the soundfile
wheel), streamed block by block and seekable, so a long file never sits in memory whole. Other
containers (m4a, aac, mp4, wma, webm) decode through FFmpeg via librosa/audioread, whole file at
once: they need the system FFmpeg.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from tts_host.data.errors import AudioDecodeError, EmptyAudioError

# Decoded by libsndfile (bundled with the soundfile wheel): no FFmpeg needed.
NATIVE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
# Decoded through FFmpeg (librosa -> audioread): install FFmpeg for these.
FFMPEG_EXTENSIONS = (".m4a", ".aac", ".mp4", ".wma", ".webm")
BLOCK_SECONDS = 30.0


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says."""

    frames: int
    sample_rate: int
    channels: int
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "': " in text and text.startswith("Error opening"):
        text = text.split("': ", 1)[1]
    return text or type(exc).__name__


class AudioReader:
    """Mono float32 access to one audio file: header info, block iteration, and range reads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._decoded: np.ndarray | None = None
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise AudioDecodeError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if size == 0:
            raise EmptyAudioError(f"{self.path}: empty file (0 bytes)")
        import soundfile

        try:
            raw = soundfile.info(str(self.path))
            self.info = AudioInfo(raw.frames, raw.samplerate, raw.channels, raw.subtype)
        except Exception as exc:  # libsndfile refuses it: FFmpeg may still decode it
            if self.path.suffix.lower() not in FFMPEG_EXTENSIONS:
                raise AudioDecodeError(f"{self.path}: cannot decode ({_one_line(exc)})") from None
            self._decoded, rate = _decode_with_ffmpeg(self.path)
            self.info = AudioInfo(len(self._decoded), rate, 1, "ffmpeg")
        if self.info.frames <= 0 or self.info.sample_rate <= 0:
            raise AudioDecodeError(f"{self.path}: no audio frames in the file")

    def blocks(self, block_frames: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive mono float32 blocks covering the whole file."""
        block_frames = block_frames or int(BLOCK_SECONDS * self.info.sample_rate)
        if self._decoded is not None:
            for start in range(0, len(self._decoded), block_frames):
                yield self._decoded[start:start + block_frames]
            return
        import soundfile

        try:
            for block in soundfile.blocks(str(self.path), blocksize=block_frames, dtype="float32", always_2d=True):
                yield _mono(block)
        except Exception as exc:
            raise AudioDecodeError(f"{self.path}: decoding failed mid-file ({_one_line(exc)})") from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Mono float32 frames ``[start, stop)`` at the file's own rate."""
        if self._decoded is not None:
            return self._decoded[start:stop]
        import soundfile

        try:
            with soundfile.SoundFile(str(self.path)) as handle:
                handle.seek(start)
                return _mono(handle.read(stop - start, dtype="float32", always_2d=True))
        except Exception as exc:
            raise AudioDecodeError(f"{self.path}: decoding failed at frame {start} ({_one_line(exc)})") from None


def _mono(block: np.ndarray) -> np.ndarray:
    return block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    import warnings

    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio, rate = librosa.load(str(path), sr=None, mono=True, dtype=np.float32)
    except Exception as exc:
        raise AudioDecodeError(f"{path}: cannot decode, even through FFmpeg ({_one_line(exc)}); "
                               "is FFmpeg installed?") from None
    return audio, int(rate)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``audio`` at ``target_rate`` using the soxr very-high-quality resampler (a no-op when rates match)."""
    if source_rate == target_rate:
        return audio.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(audio, orig_sr=source_rate, target_sr=target_rate, res_type="soxr_hq").astype(
        np.float32, copy=False)


def read_audio(path: Path | str, sample_rate: int | None = None) -> np.ndarray:
    """A whole file as mono float32, resampled to ``sample_rate`` when given."""
    reader = AudioReader(path)
    audio = reader.read(0, reader.info.frames)
    return audio if sample_rate is None else resample(audio, reader.info.sample_rate, sample_rate)


def write_clip(folder: Path, stem: str, audio: np.ndarray, sample_rate: int) -> tuple[Path, str]:
    """Write 16-bit PCM mono as ``folder/<stem>-<sha256 prefix>.wav``; returns (path, full SHA-256).

    The name carries the content hash, so a new clip never overwrites a file an older manifest
    still names: an interrupted prepare leaves the previous dataset intact. Encoded in memory,
    then written atomically (:func:`~tts_host.data.diskio.write_atomic`): a full disk raises one
    DiskFullError naming the clip, never an error swallowed inside libsndfile's callbacks.
    """
    import io

    import soundfile

    from tts_host.data.diskio import disk_full_reported, write_atomic

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, subtype="PCM_16", format="WAV")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = folder / f"{stem}-{digest[:10]}.wav"
    with disk_full_reported(folder):
        folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path, digest
