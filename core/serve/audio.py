"""Speech as the bytes an OpenAI-style client asks for: wav, flac, pcm (24 kHz mono s16le), mp3, opus, aac.

wav, flac and pcm are written by soundfile and soxr; the compressed formats by ffmpeg (a system package
the project installs). Every chunk of a stream is encoded on its own: pcm chunks are raw samples, mp3 and
aac chunks bare frames (no tags) that players read back to back.
"""

from __future__ import annotations

import io
import subprocess

import numpy as np

from tts_host.errors import TTSHostError

PCM_RATE = 24000
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}
_FFMPEG = {"mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"],
           "opus": ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"],
           "aac": ["-c:a", "aac", "-b:a", "128k", "-f", "adts"]}


def pcm16(audio: np.ndarray, rate: int, target: int) -> bytes:
    """Mono float audio at ``rate`` as signed 16-bit little-endian samples at ``target``."""
    import soxr

    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate != target and samples.size:
        samples = soxr.resample(samples, rate, target, quality="HQ")
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def encode(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    """``audio`` (mono float at ``rate``) in ``fmt``."""
    if fmt == "pcm":
        return pcm16(audio, rate, PCM_RATE)
    if fmt in ("wav", "flac"):
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, np.asarray(audio, dtype=np.float32), rate, format=fmt.upper(), subtype="PCM_16")
        return buffer.getvalue()
    if fmt in _FFMPEG:
        return _ffmpeg(pcm16(audio, rate, rate), rate, fmt)
    raise TTSHostError(f"unknown response_format '{fmt}' (formats: {', '.join(FORMATS)})")


def _ffmpeg(samples: bytes, rate: int, fmt: str) -> bytes:
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
               "-i", "pipe:0", *_FFMPEG[fmt], "pipe:1"]
    try:
        done = subprocess.run(command, input=samples, capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise TTSHostError(f"response_format '{fmt}' needs ffmpeg (apt-get install ffmpeg)") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise TTSHostError(f"ffmpeg could not encode {fmt}: {reason[0]}")
    return done.stdout
