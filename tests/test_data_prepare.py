"""prepare_dataset on real espeak speech: slicing at pauses, aligned transcripts, filters, splits, re-runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_helpers import RATE, copy_clips, frame_db, noise_bursts, noisy, read
from tts_host.data.espeak import SENTENCES, VOICES, long_recording
from tts_host.data import load_prepared, prepare_dataset
from tts_host.data.errors import DatasetError
from tts_host.data.settings import default_settings, load_settings


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Three speakers' long recordings (sentences joined with pauses), untranscribed."""
    root = tmp_path_factory.mktemp("long")
    for index, speaker in enumerate("ABC"):
        long_recording(VOICES[speaker], root / f"{speaker}.wav", SENTENCES[index * 6:index * 6 + 6], pause_s=0.6)
    return root


def test_slices_stay_in_bounds_and_never_cut_inside_speech(tmp_path: Path, recordings: Path):
    dataset = prepare_dataset(recordings, tmp_path / "out", "mix")
    settings = default_settings()
    assert len(dataset.clips) >= 6 and dataset.processed == 3
    assert not [reject for reject in dataset.rejects if reject.reason != "too_short"]
    for name in ("A.wav", "B.wav", "C.wav"):
        source, rate = read(recordings / name)
        level = frame_db(source, rate)
        loudest = level.max()
        pieces = [clip for clip in dataset.clips if clip.source == name]
        assert len(pieces) >= 2, name
        for clip in pieces:
            assert clip.sliced and clip.text == "" and clip.split in ("train", "heldout")
            assert settings.min_seconds <= clip.duration <= settings.max_seconds
            for edge in (clip.start, clip.end):
                frame = min(int(round(edge / 0.01)), len(level) - 1)
                window = level[max(0, frame - 1):frame + 1]
                assert (window - loudest <= settings.silence_db).all(), (clip.id, edge, window - loudest)
            audio, clip_rate = read(clip.audio_path)
            assert clip_rate == settings.sample_rate and abs(np.abs(audio).max() - settings.peak) < 0.01
        starts = [clip.start for clip in pieces]
        assert starts == sorted(starts) and all(a.end <= b.start for a, b in zip(pieces, pieces[1:]))


def test_per_file_transcripts_stay_with_their_audio(tmp_path: Path, speaker_clips):
    clips = speaker_clips("B", 6)
    copy_clips(clips, tmp_path / "src")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "bob", 16000)
    by_source = {clip.source: clip for clip in dataset.clips}
    assert len(by_source) == 6 and not dataset.rejects
    for wav, text in clips:
        clip = by_source[wav.name]
        assert clip.text == text and not clip.sliced and clip.language == "en"
        source, rate = read(wav)
        assert abs(clip.duration - (clip.end - clip.start)) < 0.02 and clip.end <= len(source) / rate + 0.01
        # the clip is the (normalised, resampled) source audio between start and end
        import librosa

        expected = librosa.resample(source[int(clip.start * rate):int(clip.end * rate)], orig_sr=rate, target_sr=16000)
        audio = clip.read()
        length = min(len(audio), len(expected))
        assert np.corrcoef(audio[:length], expected[:length])[0, 1] > 0.99


def test_long_transcribed_files_are_kept_whole_and_say_so(tmp_path: Path):
    long_recording(VOICES["D"], tmp_path / "src" / "story.wav", SENTENCES[:5], pause_s=0.6)
    (tmp_path / "src" / "story.txt").write_text(" ".join(SENTENCES[:5]), encoding="utf-8")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "dora")
    [clip] = dataset.clips
    assert 12 < clip.duration <= 30 and clip.text == " ".join(SENTENCES[:5]) and not clip.sliced
    assert any("kept whole" in note for note in dataset.notes)
    tight = default_settings().with_overrides({"max_whole_seconds": 12.0})
    again = prepare_dataset(tmp_path / "src", tmp_path / "out2", "dora", settings=tight)
    assert not again.clips and [reject.reason for reject in again.rejects] == ["too_long"]
    assert "not sliced" in again.rejects[0].detail


def write_float(path: Path, audio: np.ndarray, rate: int = RATE, subtype: str = "FLOAT") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype=subtype)
    return path


BAD_FILES = {
    # name: (how to make it from a good wav, expected reason, text the detail must hold)
    "zero_bytes": (lambda wav, path: path.write_bytes(b""), "empty_file", "empty file (0 bytes)"),
    "truncated_header": (lambda wav, path: path.write_bytes(wav.read_bytes()[:30]), "undecodable", "cannot decode"),
    "text_renamed_wav": (lambda wav, path: path.write_text("not audio at all\n" * 20, encoding="utf-8"),
                         "undecodable", "cannot decode"),
    "nan_samples": (lambda wav, path: write_float(path, np.full(RATE * 3, np.nan, dtype=np.float32)),
                    "non_finite", "NaN/Inf samples"),
    "digital_silence": (lambda wav, path: write_float(path, np.zeros(RATE * 3, np.float32), subtype="PCM_16"),
                        "silent", "digital silence"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_rejected_with_one_line_and_the_rest_is_kept(tmp_path: Path, speaker_clips, kind):
    (wav, text), = speaker_clips("A", 1)
    make, reason, words = BAD_FILES[kind]
    copy_clips([(wav, text)], tmp_path / "src")
    make(wav, tmp_path / "src" / f"{kind}.wav")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "alice")
    assert [(clip.source, clip.text) for clip in dataset.clips] == [(wav.name, text)]
    [reject] = dataset.rejects
    assert (reject.source, reject.reason) == (f"{kind}.wav", reason)
    assert words in reject.detail and len(reject.detail.splitlines()) == 1


def test_wav_whose_data_is_cut_short_keeps_what_is_there(tmp_path: Path, speaker_clips):
    (wav, text), = speaker_clips("A", 1)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "cut.wav").write_bytes(wav.read_bytes()[: wav.stat().st_size * 2 // 3])  # header promises more
    [clip] = prepare_dataset(tmp_path / "src", tmp_path / "out", "alice").clips
    assert clip.duration < read(wav)[0].size / RATE * 0.8


@pytest.mark.parametrize("subtype,rate,channels", [("PCM_U8", 22050, 1), ("PCM_24", 44100, 1), ("PCM_16", 96000, 2)])
def test_odd_but_valid_pcm_is_decoded_resampled_and_downmixed(tmp_path: Path, speaker_clips, subtype, rate, channels):
    (wav, text), = speaker_clips("C", 1)
    import librosa

    audio, source_rate = read(wav)
    audio = librosa.resample(audio, orig_sr=source_rate, target_sr=rate) * 0.5
    if channels == 2:
        audio = np.stack([audio, audio * 0.8], axis=1)
    (tmp_path / "src").mkdir()
    sf.write(tmp_path / "src" / "odd.wav", audio, rate, subtype=subtype)
    (tmp_path / "src" / "odd.txt").write_text(text, encoding="utf-8")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "carl", 22050)
    [clip] = dataset.clips
    info = sf.info(clip.audio_path)
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert abs(clip.duration - len(audio) / rate) < 0.5 and clip.text == text


@pytest.mark.parametrize("reason", ["low_snr", "high_spectral_entropy", "clipping", "low_speech_ratio"])
def test_each_filter_rejects_what_it_measures(tmp_path: Path, speaker_clips, reason):
    (wav, text), = speaker_clips("D", 1)
    speech, rate = read(wav)
    bad = {
        "low_snr": lambda: noisy(speech, 5.0),
        "high_spectral_entropy": lambda: noise_bursts(4.0),
        "clipping": lambda: np.clip(speech * 8, -1, 1),
        "low_speech_ratio": lambda: np.concatenate([speech[: rate], np.zeros(rate * 4, np.float32), speech[-rate:]]),
    }[reason]()
    write_float(tmp_path / "src" / "bad.wav", bad.astype(np.float32), rate)
    (tmp_path / "src" / "bad.txt").write_text(text, encoding="utf-8")
    write_float(tmp_path / "src" / "good.wav", speech, rate)
    (tmp_path / "src" / "good.txt").write_text(text, encoding="utf-8")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "dan")
    assert [clip.source for clip in dataset.clips] == ["good.wav"]
    [reject] = dataset.rejects
    assert (reject.source, reject.reason) == ("bad.wav", reason), reject.detail


def test_thresholds_come_from_a_backend_style_yaml(tmp_path: Path, speaker_clips):
    (wav, text), = speaker_clips("D", 1)
    speech, rate = read(wav)
    write_float(tmp_path / "src" / "noisy.wav", noisy(speech, 10.0), rate)
    (tmp_path / "src" / "noisy.txt").write_text(text, encoding="utf-8")
    assert [r.reason for r in prepare_dataset(tmp_path / "src", tmp_path / "a", "d").rejects] == ["low_snr"]
    config = tmp_path / "preset.yaml"
    config.write_text("model: {}\ndata:\n  min_snr_db: 5\n  sample_rate: 24000\n", encoding="utf-8")
    settings = load_settings(config)
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "b", "d", settings=settings)
    assert len(dataset.clips) == 1 and dataset.sample_rate == 24000
    config.write_text("data:\n  min_snr: 5\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="unknown dataset setting 'min_snr'"):
        load_settings(config)
    config.write_text("data:\n  min_seconds: fast\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="'min_seconds' must be float"):
        load_settings(config)


def test_rerun_on_unchanged_input_is_a_no_op_and_changes_are_incremental(tmp_path: Path, speaker_clips):
    clips = speaker_clips("A", 24) + speaker_clips("B", 24)
    src = tmp_path / "src"
    src.mkdir()
    for index in range(100):
        wav, text = clips[index % len(clips)]
        shutil.copy(wav, src / f"{index:03d}.wav")
        (src / f"{index:03d}.txt").write_text(text, encoding="utf-8")
    first = prepare_dataset(src, tmp_path / "out", "pair", workers=2)
    assert first.processed == 100 and len(first.clips) == 100
    manifest = tmp_path / "out" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    second = prepare_dataset(src, tmp_path / "out", "pair")
    assert (second.processed, second.reused) == (0, 100)
    assert manifest.stat().st_mtime_ns == stamp
    assert [(c.id, c.sha256, c.split) for c in second.clips] == [(c.id, c.sha256, c.split) for c in first.clips]
    (src / "007.txt").write_text("A changed transcript.", encoding="utf-8")
    os.utime(src / "007.txt")
    (src / "050.wav").unlink()
    third = prepare_dataset(src, tmp_path / "out", "pair")
    assert (third.processed, third.reused) == (1, 98)
    assert next(c for c in third.clips if c.id == "007").text == "A changed transcript."
    assert not list((tmp_path / "out" / "wavs").glob("050-*.wav"))
    assert len(list((tmp_path / "out" / "wavs").glob("*.wav"))) == 99
    assert load_prepared(tmp_path / "out").clips == third.clips
    shutil.copytree(tmp_path / "out", tmp_path / "copied", copy_function=shutil.copy)  # new mtimes, same bytes
    assert [clip.sha256 for clip in load_prepared(tmp_path / "copied").clips] == [clip.sha256 for clip in third.clips]
    moved = prepare_dataset(src, tmp_path / "copied", "pair")  # re-hashes once, records the new mtimes
    assert (moved.processed, moved.reused) == (0, 99)


def test_split_is_hash_based_and_stable(tmp_path: Path, speaker_clips):
    clips = speaker_clips("C", 20)
    copy_clips(clips, tmp_path / "src")
    one = prepare_dataset(tmp_path / "src", tmp_path / "one", "c", workers=1)
    shutil.copytree(tmp_path / "src", tmp_path / "src2")
    two = prepare_dataset(tmp_path / "src2", tmp_path / "two", "c", workers=2)
    assert {c.id: c.split for c in one.clips} == {c.id: c.split for c in two.clips}
    assert 1 <= len(one.heldout) <= 6 and len(one.train) + len(one.heldout) == 20


def test_damaged_clip_file_is_remade_and_foreign_output_folders_refused(tmp_path: Path, speaker_clips):
    copy_clips(speaker_clips("A", 3), tmp_path / "src")
    first = prepare_dataset(tmp_path / "src", tmp_path / "out", "a")
    first.clips[0].audio_path.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="1 clip file\\(s\\) changed since prepare"):
        load_prepared(tmp_path / "out")
    again = prepare_dataset(tmp_path / "src", tmp_path / "out", "a")
    assert (again.processed, again.reused) == (1, 2) and again.clips == first.clips
    with pytest.raises(DatasetError, match="holds the dataset of speaker 'a', not 'b'"):
        prepare_dataset(tmp_path / "src", tmp_path / "out", "b")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me", encoding="utf-8")
    with pytest.raises(DatasetError, match="not empty"):
        prepare_dataset(tmp_path / "src", tmp_path / "busy", "a")
    assert (tmp_path / "busy" / "thesis.tex").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(DatasetError, match="must not contain the source"):
        prepare_dataset(tmp_path / "src", tmp_path, "a")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["speaker"] == "a" and len(manifest["clips"]) == 3


def test_concurrent_prepares_of_one_folder_take_turns(tmp_path: Path, speaker_clips):
    import subprocess
    import sys

    copy_clips(speaker_clips("B", 8), tmp_path / "src")
    code = ("import sys, json\nfrom tts_host.data import prepare_dataset\n"
            "d = prepare_dataset(sys.argv[1], sys.argv[2], 'b', workers=1)\n"
            "print(json.dumps([d.processed, d.reused, [c.sha256 for c in d.clips]]))\n")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "src"), str(tmp_path / "out")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    results = sorted(json.loads(out) for out, _ in outputs)
    assert [(processed, reused) for processed, reused, _ in results] == [(0, 8), (8, 0)]
    assert results[0][2] == results[1][2]
    assert len(list((tmp_path / "out" / "wavs").glob("*.wav"))) == 8


def test_output_inside_the_source_folder_is_not_ingested_again(tmp_path: Path, speaker_clips):
    copy_clips(speaker_clips("A", 3), tmp_path / "src")
    first = prepare_dataset(tmp_path / "src", tmp_path / "src" / "prepared", "a")
    second = prepare_dataset(tmp_path / "src", tmp_path / "src" / "prepared", "a")
    assert len(first.clips) == len(second.clips) == 3 and second.processed == 0


def test_unknown_backend_preset_is_named():
    with pytest.raises(DatasetError, match="no preset config nosuch/tiny.yaml"):
        load_settings(backend="nosuch", preset="tiny")


def test_fast_speech_is_cut_at_word_gaps_and_endless_sound_is_refused(tmp_path: Path):
    long_recording(VOICES["A"], tmp_path / "src" / "fast.wav", SENTENCES[:8], pause_s=0.0)
    settings = default_settings().with_overrides({"min_silence_seconds": 0.5})  # no pause between sentences counts
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "f", settings=settings)
    assert len(dataset.clips) >= 2 and not dataset.rejects
    source, rate = read(tmp_path / "src" / "fast.wav")
    level = frame_db(source, rate)
    for clip in dataset.clips:
        assert 2.0 <= clip.duration <= 12.0
        for edge in (clip.start, clip.end):
            frame = min(int(round(edge / 0.01)), len(level) - 1)
            assert level[frame] - level.max() <= settings.silence_db, (clip.id, edge)

    seconds = np.arange(15 * RATE) / RATE
    drone = (0.3 * (1.2 + np.sin(2 * np.pi * 0.5 * seconds)) * np.sin(2 * np.pi * 180 * seconds)).astype(np.float32)
    write_float(tmp_path / "drone" / "drone.wav", drone)
    [reject] = prepare_dataset(tmp_path / "drone", tmp_path / "out2", "f").rejects
    assert reject.reason == "no_pause" and "without a pause" in reject.detail
