"""Folders written whole or not at all."""

import pytest

from tts_host.errors import TTSHostError
from tts_host.folders import new_folder


def test_folder_appears_only_when_the_block_succeeds(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with new_folder(out) as staging:
            (staging / "half.bin").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with new_folder(out) as staging:
        (staging / "whole.bin").write_bytes(b"y")
    assert [p.name for p in out.iterdir()] == ["whole.bin"] and list(tmp_path.iterdir()) == [out]


def test_a_non_empty_target_is_refused_and_kept(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(TTSHostError, match=r"export folder .*export exists and is not empty"):
        with new_folder(out, "export folder"):
            pass
    assert (out / "mine.txt").read_text() == "keep"
