"""Faults: bit rot, truncation, SIGKILL mid-add, concurrent adds, gc racing an add, repair."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from library_backend import finetune_weights
from library_fixtures import base, base_folder, clone, embedding, flip_byte, lib, toy_host, truncate  # noqa: F401
from tts_host.errors import TTSHostError, ValidationError
from tts_host.speakers import Library

CHILD = Path(__file__).parent / "library_child.py"


@pytest.fixture
def alice(lib, base, base_folder, tmp_path, speaker_clips):
    """Voice 'alice' on a checkpoint of the tiny base, cloned from a real clip."""
    ckpt = lib.add_checkpoint("toy", base, None, ["alice"],
                              {"model": finetune_weights(base_folder, tmp_path / "m.safetensors", 1)})
    return clone(lib, "alice", "toy", ckpt, [speaker_clips("A", 1)[0][0]])


def entry(lib, voice, role):
    return next(f for f in lib.files_of(voice) if f.role == role)


ROLES = ["model", "codec", "stats", "config", "conditioning", "reference:0"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("role", ROLES)
def test_damage_in_any_blob_is_found_naming_voice_and_file(lib, alice, role, damage):
    target = entry(lib, alice, role)
    blob = lib.blob_path(target.sha256)
    flip_byte(blob, target.size // 2) if damage == "flip" else truncate(blob, target.size // 2)
    problems = lib.verify(deep=True)
    assert len(problems) == 1 and problems[0].voices == ("alice",)
    line = problems[0].line()
    assert target.path.split("/")[-1] in line and "'alice'" in line and "damaged" in line
    assert lib.verify("alice") == problems  # the fast path sees the changed mtime too
    with pytest.raises(ValidationError) as err:
        lib.validate_for_finetune("alice")
    assert err.value.file == target.path and err.value.subject.startswith("voice 'alice'")
    assert target.sha256[:16] in str(err.value.expected)


def test_the_fast_path_trusts_the_stat_cache_and_deep_does_not(lib, alice):
    target = entry(lib, alice, "model")
    blob = lib.blob_path(target.sha256)
    st = blob.stat()
    flip_byte(blob, 10)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, mtime and inode: the cache matches
    assert lib.verify() == []
    assert [p.sha256 for p in lib.verify(deep=True)] == [target.sha256]
    assert [p.sha256 for p in lib.verify()] == [target.sha256]  # deep cleared the cache entry


def test_a_missing_blob_is_reported(lib, alice):
    target = entry(lib, alice, "conditioning")
    lib.blob_path(target.sha256).unlink()
    (problem,) = lib.verify()
    assert problem.reason == "the blob is missing" and "voice 'alice' file conditioning.safetensors" in problem.line()
    with pytest.raises(TTSHostError, match="missing from the blob store"):
        lib.materialise(lib.voice("alice"), lib.home / "out")


def test_repair_resupplies_a_damaged_blob_from_an_intact_copy(lib, alice, speaker_clips, tmp_path):
    target = entry(lib, alice, "reference:0")
    flip_byte(lib.blob_path(target.sha256), 1000)
    with pytest.raises(TTSHostError, match=f"Supply a file with sha256 {target.sha256}") as err:
        lib.repair("alice", sources=[tmp_path / "m.safetensors"])
    assert "voice 'alice' file references/00.wav" in str(err.value)
    assert len(lib.verify(deep=True)) == 1  # refused: nothing changed
    report = lib.repair("alice", sources=[speaker_clips("A", 1)[0][0].parent])
    assert report.actions == [f"blob {target.sha256[:16]} re-supplied from {speaker_clips('A', 1)[0][0]}"]
    assert lib.verify(deep=True) == [] and lib.validate_for_finetune("alice")


def run_child(home: Path, point: str, *names: str, action: str = "add") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), str(home), point, *names],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, LIBRARY_CHILD_ACTION=action))


def wait_stopped(child: subprocess.Popen) -> None:
    _, status = os.waitpid(child.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), child.stderr.read()


def prepare_home(home: Path) -> None:
    result = subprocess.run([sys.executable, str(CHILD), str(home), "none"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("point", ["staged", "leased", "committed", "transaction"])
def test_sigkill_while_adding_a_voice_leaves_the_library_valid(tts_home, point):
    prepare_home(tts_home)
    child = run_child(tts_home, point, "victim")
    wait_stopped(child)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Library(tts_home, host=toy_host()) as lib:
        assert lib.voices() == []  # without the voice, and nothing half-there
        assert lib.verify(deep=True) == []
        report = lib.gc()
        assert lib.blobs.on_disk().keys() == {f.sha256 for f in lib.bases()[0].files}
        assert list(lib.blobs.tmp_dir.iterdir()) == []
        assert report.leases == (1 if point in ("leased", "committed", "transaction") else 0) * 2
    rerun = run_child(tts_home, "none", "victim")
    assert rerun.wait() == 0, rerun.stderr.read()
    with Library(tts_home, host=toy_host()) as lib:
        voice = lib.voice("victim")
        assert lib.validate_for_finetune(voice)
        assert lib.blob_path(voice.files[1].sha256).read_bytes() == b"victim" * 200_000


def test_eight_processes_adding_voices_at_once_lose_none(tts_home):
    prepare_home(tts_home)
    children = [run_child(tts_home, "none", *(f"p{i}-v{j}" for j in range(3))) for i in range(8)]
    for child in children:
        assert child.wait() == 0, child.stderr.read()
    with Library(tts_home, host=toy_host()) as lib:
        assert sorted(v.name for v in lib.voices()) == sorted(f"p{i}-v{j}" for i in range(8) for j in range(3))
        assert lib.verify(deep=True) == []
        for voice in lib.voices():
            assert lib.blob_path(voice.files[1].sha256).read_bytes() == voice.name.encode() * 200_000


def test_gc_during_an_add_removes_nothing_the_add_needs(tts_home):
    prepare_home(tts_home)
    child = run_child(tts_home, "committed", "slow")
    wait_stopped(child)  # its first blob is in the store, leased, not yet referenced by any record
    with Library(tts_home, host=toy_host()) as lib:
        before = set(lib.blobs.on_disk())
        assert lib.gc().blobs == 0
        assert set(lib.blobs.on_disk()) == before
    child.send_signal(signal.SIGCONT)
    assert child.wait() == 0, child.stderr.read()
    with Library(tts_home, host=toy_host()) as lib:
        assert lib.validate_for_finetune("slow") and lib.verify(deep=True) == []


def test_gc_running_in_a_loop_while_voices_are_added(tts_home):
    prepare_home(tts_home)
    loop = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        f"sys.path.insert(0, {str(CHILD.parent)!r})\n"
        "from tts_host.speakers import Library\n"
        f"lib = Library({str(tts_home)!r})\n"
        "end = time.monotonic() + 60\n"
        "while time.monotonic() < end and not __import__('os').path.exists(sys.argv[1]):\n"
        "    lib.gc()\n"), str(tts_home / "stop")])
    try:
        adder = run_child(tts_home, "none", *(f"g{i}" for i in range(6)))
        assert adder.wait() == 0, adder.stderr.read()
    finally:
        (tts_home / "stop").touch()
        assert loop.wait() == 0
    with Library(tts_home, host=toy_host()) as lib:
        assert len(lib.voices()) == 6 and lib.verify(deep=True) == []
        for voice in lib.voices():
            assert np.array_equal(lib.voice_conditioning(voice)["speaker_embedding"],
                                  embedding(len(voice.name))["speaker_embedding"])


def test_a_full_disk_at_every_write_of_an_add_is_one_line_and_loses_nothing(tts_home):
    prepare_home(tts_home)
    counted = subprocess.run([sys.executable, str(CHILD), str(tts_home), "count-fsyncs", "probe"],
                             capture_output=True, text=True, timeout=120)
    assert counted.returncode == 0, counted.stderr
    writes = int(counted.stdout.strip().splitlines()[-1])
    assert writes >= 5  # blobs, record file, pending list, folders
    for step in range(1, writes + 1):
        child = subprocess.run([sys.executable, str(CHILD), str(tts_home), f"enospc:{step}", f"victim{step}"],
                               capture_output=True, text=True, timeout=120)
        lines = child.stderr.strip().splitlines()
        if child.returncode == 0:  # the fsync of a folder after the commit: the voice is whole
            assert lines == []
            continue
        assert child.returncode == 3 and len(lines) == 1, (step, child.stderr)
        assert "no space left on device" in lines[0] and str(tts_home / "library") in lines[0], lines[0]
        with Library(tts_home, host=toy_host()) as lib:
            assert f"victim{step}" not in {v.name for v in lib.voices()}, step
            assert lib.verify(deep=True) == [] and lib.index_problems() == []
    with Library(tts_home, host=toy_host()) as lib:
        lib.gc()
        kept = {v.name for v in lib.voices()}
        assert list(lib.blobs.tmp_dir.iterdir()) == []
        assert lib.blobs.on_disk().keys() == {f.sha256 for r in [*lib.bases(), *lib.voices()] for f in r.files}
    assert kept <= {"probe"} | {f"victim{step}" for step in range(1, writes + 1)} and "probe" in kept


@pytest.mark.parametrize("point", ["streamed", "leased", "committed", "transaction"])
def test_sigkill_while_importing_a_voice_leaves_the_library_valid(tmp_path, point):
    source, target = tmp_path / "source", tmp_path / "target"
    prepare_home(source)
    assert run_child(source, "none", "traveller").wait() == 0
    with Library(source, host=toy_host()) as lib:
        archive = lib.export_voice("traveller", tmp_path / "traveller.ttsvoice")
    prepare_home(target)
    child = run_child(target, point, "traveller", action=f"import:{archive}")
    wait_stopped(child)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Library(target, host=toy_host()) as lib:
        assert lib.voices() == [] and lib.verify(deep=True) == [] and lib.index_problems() == []
        lib.gc()
        assert lib.blobs.on_disk().keys() == {f.sha256 for f in lib.bases()[0].files}
        assert list(lib.blobs.tmp_dir.iterdir()) == []
    assert run_child(target, "none", "traveller", action=f"import:{archive}").wait() == 0
    with Library(target, host=toy_host()) as lib:
        assert lib.validate_for_finetune("traveller") and lib.verify(deep=True) == []


def test_sigkill_during_gc_leaves_the_library_valid(tts_home):
    prepare_home(tts_home)
    assert run_child(tts_home, "none", "one", "two", "three").wait() == 0
    with Library(tts_home, host=toy_host()) as lib:
        lib.remove_voice("one")
        lib.remove_voice("two")
        kept = {f.sha256 for f in lib.files_of(lib.voice("three"))}
    child = run_child(tts_home, "unlinked", action="gc")
    wait_stopped(child)  # one unused blob deleted, the gc transaction not committed
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Library(tts_home, host=toy_host()) as lib:
        assert lib.verify(deep=True) == [] and lib.index_problems() == []
        assert lib.gc().blobs >= 1
        assert lib.blobs.on_disk().keys() == kept | {f.sha256 for f in lib.bases()[0].files}
        assert lib.validate_for_finetune("three")


@pytest.mark.parametrize("action", ["remove", "rename"])
def test_a_change_killed_between_commit_and_settling_is_settled_on_the_next_open(tts_home, action):
    from tts_host.speakers.recovery import recover

    prepare_home(tts_home)
    assert run_child(tts_home, "none", "old", "other").wait() == 0
    names = ["old"] if action == "remove" else ["old", "new"]
    child = run_child(tts_home, "settling", *names, action=action)
    wait_stopped(child)  # committed; the record file of 'old' not yet removed
    child.send_signal(signal.SIGKILL)
    child.wait()
    expected = ["other"] if action == "remove" else ["new", "other"]
    with Library(tts_home, host=toy_host()) as lib:
        assert sorted(v.name for v in lib.voices()) == expected
        assert lib.index_problems() == []
    recover(tts_home / "library", force=True)  # the journal now says exactly what the index said
    with Library(tts_home, host=toy_host()) as lib:
        assert sorted(v.name for v in lib.voices()) == expected and lib.verify(deep=True) == []
