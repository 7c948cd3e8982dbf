"""The espeak-ng fixture really produces distinct, non-silent speakers."""

import numpy as np
import soundfile as sf


def test_clips_are_real_speech_of_distinct_voices(speaker_clips):
    a_path, a_text = speaker_clips("A", 1)[0]
    b_path, _ = speaker_clips("B", 1)[0]
    a, rate = sf.read(a_path, dtype="float32")
    b, _ = sf.read(b_path, dtype="float32")
    assert rate == 22050
    assert len(a) / rate > 1.0 and np.abs(a).max() > 0.1
    assert a_path.with_suffix(".txt").read_text().strip() == a_text
    assert not np.array_equal(a[: len(b)], b[: len(a)])
