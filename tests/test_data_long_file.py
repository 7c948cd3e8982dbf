"""A one-hour recording is sliced in streaming blocks: memory stays bounded by the clip length."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from data_helpers import read, write_hour
from tts_host.data.espeak import SENTENCES, VOICES, long_recording
from tts_host.data import prepare_dataset

RATE = 16000
HOUR = 3600.0


def test_one_hour_file_is_sliced_with_bounded_memory(tmp_path: Path):
    import librosa

    unit, rate = read(long_recording(VOICES["B"], tmp_path / "unit.wav", SENTENCES[:8], pause_s=0.7))
    unit = librosa.resample(unit, orig_sr=rate, target_sr=RATE)
    source = write_hour(tmp_path / "src" / "hour.wav", unit, RATE, HOUR)
    whole_file_bytes = int(HOUR * RATE) * np.dtype(np.float32).itemsize  # what decoding it at once would take

    tracemalloc.start()
    try:
        dataset = prepare_dataset(source.parent, tmp_path / "out", "bea", RATE, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    print(f"peak traced memory {peak / 2**20:.1f} MiB")
    assert peak < whole_file_bytes / 8, f"peak {peak / 2**20:.0f} MiB while the whole file is {whole_file_bytes / 2**20:.0f} MiB"
    kept = sum(clip.duration for clip in dataset.clips)
    assert len(dataset.clips) > 200 and kept > 0.8 * HOUR
    assert all(2.0 <= clip.duration <= 12.0 for clip in dataset.clips)
    assert {reject.reason for reject in dataset.rejects} <= {"too_short"}
    assert dataset.clips[-1].end > HOUR - 60


def test_one_long_file_rendered_by_two_processes_matches_one(tmp_path: Path):
    unit, rate = read(long_recording(VOICES["C"], tmp_path / "unit.wav", SENTENCES[8:14], pause_s=0.7))
    write_hour(tmp_path / "src" / "talk.wav", unit, rate, seconds=200.0)
    one = prepare_dataset(tmp_path / "src", tmp_path / "one", "cal", workers=1)
    two = prepare_dataset(tmp_path / "src", tmp_path / "two", "cal", workers=2)
    assert len(one.clips) > 15
    assert [(c.id, c.sha256, c.start, c.end, c.split) for c in two.clips] == \
        [(c.id, c.sha256, c.start, c.end, c.split) for c in one.clips]
    assert two.rejects == one.rejects
