"""Audio formats: wav, flac, ogg, opus and mp3 through libsndfile; m4a through FFmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_helpers import read
from tts_host.data import prepare_dataset
from tts_host.data.audio import AudioReader
from tts_host.data.errors import AudioDecodeError

NATIVE = {"flac": ("FLAC", "PCM_16", 22050), "ogg": ("OGG", "VORBIS", 22050), "mp3": ("MP3", "MPEG_LAYER_III", 22050),
          "opus": ("OGG", "OPUS", 48000)}


def test_every_native_format_is_prepared_with_its_transcript(tmp_path: Path, speaker_clips):
    import librosa

    clips = speaker_clips("B", len(NATIVE) + 1)
    src = tmp_path / "src"
    src.mkdir()
    expected = {}
    for (extension, (container, subtype, rate)), (wav, text) in zip(NATIVE.items(), clips):
        audio, source_rate = read(wav)
        sf.write(src / f"{wav.stem}.{extension}", librosa.resample(audio, orig_sr=source_rate, target_sr=rate), rate,
                 format=container, subtype=subtype)
        (src / f"{wav.stem}.txt").write_text(text, encoding="utf-8")
        expected[f"{wav.stem}.{extension}"] = (text, len(audio) / source_rate)
    dataset = prepare_dataset(src, tmp_path / "out", "bo", 24000)
    assert not dataset.rejects
    assert {clip.source: clip.text for clip in dataset.clips} == {name: text for name, (text, _) in expected.items()}
    for clip in dataset.clips:
        assert clip.duration <= expected[clip.source][1] + 0.1 and sf.info(clip.audio_path).samplerate == 24000


def test_m4a_decodes_through_ffmpeg(tmp_path: Path, speaker_clips):
    if shutil.which("ffmpeg") is None:
        pytest.skip("FFmpeg is not installed: m4a needs it (apt-get install ffmpeg)")
    (wav, text), = speaker_clips("A", 1)
    (tmp_path / "src").mkdir()
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), str(tmp_path / "src" / "talk.m4a")], check=True)
    (tmp_path / "src" / "talk.txt").write_text(text, encoding="utf-8")
    (tmp_path / "src" / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "al")
    [clip] = dataset.clips
    assert clip.source == "talk.m4a" and clip.text == text
    reference, rate = read(wav)
    audio = clip.read(rate)
    assert abs(len(audio) - len(reference)) < 0.3 * rate
    [reject] = dataset.rejects
    assert (reject.source, reject.reason) == ("broken.m4a", "undecodable") and "FFmpeg" in reject.detail


def test_reader_streams_blocks_that_add_up_to_the_file(tmp_path: Path):
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, size=(100_003, 2)).astype(np.float32)
    sf.write(tmp_path / "s.flac", stereo, 44100, subtype="PCM_24")
    reader = AudioReader(tmp_path / "s.flac")
    blocks = list(reader.blocks(block_frames=30_000))
    assert [len(block) for block in blocks] == [30_000, 30_000, 30_000, 10_003]
    joined = np.concatenate(blocks)
    assert np.allclose(joined, stereo.mean(axis=1), atol=1e-6)
    assert np.array_equal(reader.read(40_000, 40_100), joined[40_000:40_100])
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty file"):
        AudioReader(tmp_path / "empty.flac")
