"""Faults in the index itself: deleted, emptied or page-corrupted; recovery from the record journal."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest

from library_backend import finetune_weights
from library_fixtures import base, base_folder, clone, lib, toy_host  # noqa: F401
from plugin_dists import run_cli
from tts_host.speakers import Library
from tts_host.speakers.index_health import IndexDamagedError


@pytest.fixture
def populated(lib, base, base_folder, tmp_path, speaker_clips):
    """A library with a base, two chained checkpoints and three voices (one zero-shot); closed."""
    first = lib.add_checkpoint("toy", base, None, ["alice"],
                               {"model": finetune_weights(base_folder, tmp_path / "a.safetensors", 1)})
    second = lib.add_checkpoint("toy", base, first, ["alice", "bob"],
                                {"model": finetune_weights(base_folder, tmp_path / "b.safetensors", 2)})
    clip = speaker_clips("A", 1)[0][0]
    clone(lib, "alice", "toy", first, [clip])
    clone(lib, "bob", "toy", second, [clip])
    clone(lib, "zero", "toy", base, [clip])
    lib.rename_voice("zero", "zero-shot")
    state = {v.name: (v.checkpoint_id is not None, [f.sha256 for f in lib.files_of(v)]) for v in lib.voices()}
    lib.close()
    return state


def index_files(home: Path) -> list[Path]:
    """The index and its WAL files."""
    return sorted((home / "library").glob("index.sqlite*"))


def blob_count(home: Path) -> int:
    """Blob files on disk."""
    return sum(1 for p in (home / "library" / "blobs").rglob("*") if p.is_file())


def checkpoint_the_wal(index: Path) -> tuple[int, int]:
    """Move the WAL's pages into the index file; returns its page count and page size."""
    conn = sqlite3.connect(index)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return pages, page_size


def corrupt_a_middle_page(index: Path) -> None:
    """Checkpoint the WAL into the main file, then overwrite one 4 KiB page in its middle."""
    pages, page_size = checkpoint_the_wal(index)
    assert pages >= 3
    with open(index, "r+b") as handle:
        handle.seek((pages // 2) * page_size)
        handle.write(b"\xa5" * page_size)


@pytest.mark.parametrize("damage", ["deleted", "emptied", "truncated", "page-corrupted"])
def test_gc_and_verify_refuse_a_damaged_index_and_delete_nothing(populated, tts_home, damage):
    blobs = blob_count(tts_home)
    index = tts_home / "library" / "index.sqlite"
    if damage == "deleted":
        for path in index_files(tts_home):
            path.unlink()
    elif damage == "emptied":
        for path in index_files(tts_home):
            path.unlink()
        index.write_bytes(b"")
    elif damage == "truncated":
        checkpoint_the_wal(index)  # so that the cut loses committed pages
        with open(index, "r+b") as handle:
            handle.truncate(index.stat().st_size // 2)
    else:
        corrupt_a_middle_page(index)
    for command in (["library", "gc"], ["library", "verify", "--deep"], ["voices", "verify", "--deep"],
                    ["voices", "list"], ["voices", "show", "alice"], ["voices", "export", "alice", "-o", "x"]):
        result = run_cli(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "library index" in lines[0] and "tts-host library recover" in lines[0], \
            (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert blob_count(tts_home) == blobs


@pytest.mark.parametrize("damage", ["deleted", "page-corrupted"])
def test_recover_brings_back_every_base_checkpoint_and_voice(populated, tts_home, damage):
    index = tts_home / "library" / "index.sqlite"
    if damage == "deleted":
        for path in index_files(tts_home):
            path.unlink()
    else:
        corrupt_a_middle_page(index)
    result = run_cli("library", "recover")
    assert result.returncode == 0, result.stderr
    assert "restored 1 base(s), 2 checkpoint(s), 3 voice(s)" in result.stdout
    if damage == "page-corrupted":
        assert any(p.name.startswith("index.sqlite.broken-") for p in index_files(tts_home))
    assert run_cli("voices", "verify", "--deep").returncode == 0
    with Library(tts_home, host=toy_host()) as lib:
        after = {v.name: (v.checkpoint_id is not None, [f.sha256 for f in lib.files_of(v)]) for v in lib.voices()}
        bob = lib.model_of(lib.voice("bob"))
        assert [c.speakers for c in lib.lineage(bob)] == [("alice",), ("alice", "bob")]
        lib.validate_for_finetune("bob")
    assert after == populated
    gc = run_cli("library", "gc")
    assert gc.returncode == 0 and "removed 0 unused file(s)" in gc.stdout


def test_a_removed_voice_stays_removed_after_recovery(lib, base, speaker_clips, tts_home):
    clone(lib, "gone", "toy", base, [speaker_clips("A", 1)[0][0]])
    clone(lib, "kept", "toy", base, [speaker_clips("B", 1)[0][0]])
    lib.remove_voice("gone")
    lib.close()
    for path in index_files(tts_home):
        path.unlink()
    assert run_cli("library", "recover").returncode == 0
    with Library(tts_home, host=toy_host()) as fresh:
        assert [v.name for v in fresh.voices()] == ["kept"]


def test_an_index_replaced_by_an_empty_one_is_refused(populated, tts_home):
    index = tts_home / "library" / "index.sqlite"
    for path in index_files(tts_home):
        path.unlink()
    from tts_host.speakers import db

    db.connect(index).close()  # a fresh, valid, empty index where the real one was
    with pytest.raises(IndexDamagedError, match="holds no records"):
        Library(tts_home, host=toy_host())


def test_a_library_older_than_the_journal_gets_one_on_open(populated, tts_home):
    records = tts_home / "library" / "records"
    import shutil

    shutil.rmtree(records)
    Library(tts_home, host=toy_host()).close()
    assert (records / ".complete").is_file()
    assert len(list((records / "voices").glob("*.json"))) == 3


def test_verify_reports_temp_leftovers_and_index_gaps(populated, tts_home):
    leftover = tts_home / "library" / "tmp" / "999999999-import.tmp"
    leftover.write_bytes(b"x" * 1000)
    result = run_cli("library", "verify")
    assert result.returncode == 0, result.stderr
    assert f"leftover {leftover}" in result.stdout
    conn = sqlite3.connect(tts_home / "library" / "index.sqlite")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("DELETE FROM voices WHERE name = 'alice'")
    conn.commit()
    conn.close()
    result = run_cli("library", "verify")
    assert result.returncode == 1
    assert "voice 'alice' has a record file but is not in the index" in result.stderr
    assert run_cli("library", "gc").returncode == 0
    assert not leftover.exists()


def test_fine_tune_work_folders_are_listed_and_removed_only_when_asked(populated, tts_home):
    run = tts_home / "work" / "xtts" / "run-0123456789abcdef"
    run.mkdir(parents=True)
    (run / "state.safetensors").write_bytes(b"x" * 2000)
    listed = run_cli("library", "verify")
    assert listed.returncode == 0 and f"leftover {run} (2.0 KB): fine-tune work folder" in listed.stdout
    assert run_cli("library", "gc").returncode == 0 and run.is_dir()
    removed = run_cli("library", "gc", "--runs")
    assert removed.returncode == 0 and "1 work folder(s)" in removed.stdout and not run.exists()


def test_names_are_found_in_any_unicode_spelling(lib, base, speaker_clips):
    composed, decomposed = "café", unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    clone(lib, composed, "toy", base, [speaker_clips("A", 1)[0][0]])
    assert lib.voice(decomposed).name == composed
    lib.rename_voice(decomposed, "cafe2")
    lib.rename_voice("cafe2", decomposed)
    lib.remove_voice(decomposed)
    assert lib.voices() == []


def test_recover_refuses_a_healthy_index_and_a_library_in_use(populated, tts_home):
    healthy = run_cli("library", "recover")
    assert healthy.returncode == 1 and "is healthy: nothing to recover" in healthy.stderr
    with Library(tts_home, host=toy_host()):
        busy = run_cli("library", "recover", "--force")
    assert busy.returncode == 1 and "another tts-host process has the library" in busy.stderr
    forced = run_cli("library", "recover", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "restored 1 base(s), 2 checkpoint(s), 3 voice(s)" in forced.stdout
    with Library(tts_home, host=toy_host()) as lib:
        after = {v.name: (v.checkpoint_id is not None, [f.sha256 for f in lib.files_of(v)]) for v in lib.voices()}
        ids = sorted(c.id for c in lib.checkpoints())
    assert after == populated and ids == [1, 2]


def test_a_damaged_or_missing_record_file_is_rewritten_from_the_index_and_said(populated, tts_home):
    records = sorted((tts_home / "library" / "records" / "voices").glob("*.json"))
    records[0].write_text("garbage")
    records[1].unlink()
    first = run_cli("library", "verify")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("rewrote the record file of voice") == 2
    again = run_cli("library", "verify")
    assert again.returncode == 0 and "rewrote" not in again.stdout


def test_junk_in_the_pending_folder_blocks_nothing(populated, tts_home):
    pending = tts_home / "library" / "records" / "pending"
    (pending / "999-abc").mkdir(parents=True)
    (pending / "998-def").write_text('["voices", "\\ud800"]\n')
    for command in (["library", "verify"], ["library", "gc"], ["voices", "list"]):
        result = run_cli(*command)
        assert result.returncode == 0, (command, result.stderr)


def test_recover_warns_about_files_no_record_uses(populated, tts_home):
    records = tts_home / "library" / "records" / "voices"
    with Library(tts_home, host=toy_host()) as lib:
        zero = lib.voice("zero-shot")
    next(p for p in records.glob("*.json") if '"zero-shot"' in p.read_text()).unlink()
    for path in index_files(tts_home):
        path.unlink()
    result = run_cli("library", "recover")
    assert result.returncode == 0, result.stderr
    assert "2 voice(s)" in result.stdout and "file(s) in the store are used by no record" in result.stderr
    with Library(tts_home, host=toy_host()) as lib:  # its own files stay on disk until gc
        assert all(lib.blob_path(f.sha256).is_file() for f in zero.files) and zero.files
