"""Ingest: every source format, auto-detection, and bad metadata lines as one-line rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_helpers import copy_clips
from tts_host.data.errors import DatasetError
from tts_host.data.ingest import detect_format, ingest


@pytest.fixture
def clips(speaker_clips):
    return speaker_clips("A", 4)


def write_ljspeech(root: Path, clips) -> Path:
    copy_clips(clips, root / "wavs", transcripts=False)
    lines = [f"{wav.stem}|{text}|{text.upper()}" for wav, text in clips]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_ljspeech_uses_normalized_text_and_wavs_folder(tmp_path: Path, clips):
    found = ingest(write_ljspeech(tmp_path / "lj", clips), "alice")
    assert found.format == "ljspeech" and not found.rejects
    assert [(item.audio.name, item.text) for item in found.items] == [(wav.name, text.upper()) for wav, text in clips]


def test_coqui_csv_keeps_the_named_speaker_rows(tmp_path: Path, clips):
    root = tmp_path / "coqui"
    copy_clips(clips, root / "audio", transcripts=False)
    rows = ["audio_file|text|speaker_name"]
    rows += [f"audio/{wav.name}|{text}|{'alice' if index < 3 else 'bob'}" for index, (wav, text) in enumerate(clips)]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    found = ingest(root, "alice")
    assert found.format == "coqui"
    assert [(item.name, item.text) for item in found.items] == [(f"audio/{wav.name}", text) for wav, text in clips[:3]]
    assert [(reject.reason, reject.source) for reject in found.rejects] == [("other_speaker", "metadata.csv:5")]


def test_sovits_list_resolves_foreign_absolute_paths_and_languages(tmp_path: Path, clips):
    root = tmp_path / "sovits"
    copy_clips(clips, root, transcripts=False)
    lines = [f"C:\\Users\\someone\\data\\{wav.name}|spk|EN|{text}" for wav, text in clips]
    (root / "voice.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = ingest(root, "alice")
    assert found.format == "sovits" and not found.rejects
    assert [(item.audio, item.language, item.text) for item in found.items] == [
        (root / wav.name, "en", text) for wav, text in clips]
    assert "taken as 'alice'" in found.notes[0]


def test_folder_pairs_audio_with_transcripts_and_allows_untranscribed(tmp_path: Path, clips):
    root = tmp_path / "folder"
    copy_clips(clips[:2], root)
    copy_clips(clips[2:], root / "nested", transcripts=False)
    found = ingest(root, "alice")
    assert found.format == "folder"
    assert [(item.name, item.text) for item in found.items] == [
        (clips[0][0].name, clips[0][1]), (clips[1][0].name, clips[1][1]),
        (f"nested/{clips[2][0].name}", None), (f"nested/{clips[3][0].name}", None)]
    assert "2 file(s) without a transcript" in found.notes[0]


def test_bad_metadata_lines_become_one_line_rejects(tmp_path: Path, clips):
    root = write_ljspeech(tmp_path / "lj", clips[:2])
    content = (root / "metadata.csv").read_bytes()
    content += b"missing_clip|Where is this file?|\n"
    content += "caf\u00e9|text in latin-1|\n".encode("latin-1")
    content += f"{clips[0][0].stem}||\n".encode()
    content += b"just-an-id\n"
    (root / "metadata.csv").write_bytes(content)
    found = ingest(root, "alice")
    assert len(found.items) == 2
    reasons = {reject.reason: reject for reject in found.rejects}
    assert set(reasons) == {"missing_file", "not_utf8", "empty_transcript", "bad_line"}
    assert reasons["missing_file"].detail == "metadata.csv line 3: names 'missing_clip', which does not exist"
    assert reasons["not_utf8"].detail.startswith("metadata.csv line 4: not UTF-8 (byte 0xe9 at column 4)")
    assert all("\n" not in reject.detail for reject in found.rejects)


def test_empty_and_non_utf8_transcript_files_are_rejected(tmp_path: Path, clips):
    root = tmp_path / "folder"
    copy_clips(clips[:3], root)
    clips_in_root = sorted(root.glob("*.wav"))
    clips_in_root[0].with_suffix(".txt").write_text("  \n", encoding="utf-8")
    clips_in_root[1].with_suffix(".txt").write_bytes("na\u00efve".encode("latin-1"))
    found = ingest(root, "alice")
    assert [item.audio for item in found.items] == [clips_in_root[2]]
    assert [reject.reason for reject in found.rejects] == ["empty_transcript", "not_utf8"]
    assert found.rejects[1].detail == f"{clips_in_root[1].stem}.txt: not UTF-8 (byte 0xef at offset 2); re-save as UTF-8"


def test_detect_format_and_unusable_sources(tmp_path: Path, clips):
    lj = write_ljspeech(tmp_path / "lj", clips)
    assert detect_format(lj) == "ljspeech" and detect_format(lj / "metadata.csv") == "ljspeech"
    (tmp_path / "x.list").write_text("a.wav|s|en|hello\n", encoding="utf-8")
    assert detect_format(tmp_path / "x.list") == "sovits"
    with pytest.raises(DatasetError, match="no such file or folder"):
        ingest(tmp_path / "absent", "alice")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio found"):
        ingest(tmp_path / "empty", "alice")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        ingest(lj, "alice", fmt="kaldi")
