"""Faults of ``tts-host dataset prepare``: a full disk, a prepare killed part-way, bad speaker names, Unicode names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from data_helpers import copy_clips
from plugin_dists import run_cli
from tts_host.data import DatasetError, load_prepared, prepare_dataset

# Runs `tts-host ARGS...` with os.fsync failing, the way a full disk reports it, once OK clip
# files under WAVS have been written (counted per process): FAULT is an errno name, or KILL to
# die on the spot as a killed or powered-off machine would.
FAULTY_DISK = """
import errno, os, sys
from tts_host.cli.main import main

wavs, ok, fault, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
real_fsync, written = os.fsync, []

def fsync(fd):
    if os.readlink(f"/proc/self/fd/{fd}").startswith(wavs + "/"):  # clip files, not the folder itself
        if len(written) >= ok:
            if fault == "KILL":
                os._exit(137)
            code = getattr(errno, fault)
            raise OSError(code, os.strerror(code))
        written.append(fd)
    real_fsync(fd)

os.fsync = fsync
main(args)
"""


@pytest.fixture
def source(tmp_path: Path, speaker_clips) -> Path:
    copy_clips(speaker_clips("A", 6), tmp_path / "src")
    return tmp_path / "src"


def faulty_prepare(source: Path, out: Path, fault: str, workers: str) -> subprocess.CompletedProcess:
    """Prepare ``source`` into ``out`` with ``fault`` striking after two clips (per process)."""
    wavs = str(out.parent.resolve() / out.name / "wavs")
    args = ["dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out), "--workers", workers]
    return subprocess.run([sys.executable, "-c", FAULTY_DISK, wavs, "2", fault, *args], capture_output=True,
                          text=True, timeout=300)


def assert_one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def leftovers(out: Path) -> list[str]:
    return sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())


def assert_complete(out: Path, clips: int) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["clips"]) == clips
    assert len(load_prepared(out).clips) == clips and len(list((out / "wavs").glob("*.wav"))) == clips
    assert not (out / ".prepare-unfinished").exists() and not list(out.rglob(".tmp-*"))


@pytest.mark.parametrize("fault,workers,message", [
    ("ENOSPC", "1", "no space left on device"),
    ("EDQUOT", "2", "disk quota exceeded"),
])
def test_full_disk_is_one_error_line_naming_the_clip_and_the_retry_finishes(
        tmp_path: Path, source: Path, fault: str, workers: str, message: str):
    out = tmp_path / "out"
    result = faulty_prepare(source, out, fault, workers)
    assert result.returncode == 1, result.stderr
    line = assert_one_error_line(result.stderr)  # the progress bar is gone too
    assert line.startswith(f"error: cannot write {out.resolve() / 'wavs'}/") and f".wav: {message} (" in line
    assert " needed, " in line and " free there)" in line
    assert not (out / "manifest.json").exists()
    assert leftovers(out) == [".prepare-unfinished", ".prepare.lock"]  # no clip, no temp file left
    retry = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out))
    assert retry.returncode == 0, retry.stderr
    assert_complete(out, 6)


def test_a_prepare_killed_part_way_is_taken_over_by_the_next(tmp_path: Path, source: Path):
    out = tmp_path / "out"
    killed = faulty_prepare(source, out, "KILL", "1")
    assert killed.returncode == 137
    left = [path.name for path in (out / "wavs").iterdir()]
    assert len([name for name in left if not name.startswith(".")]) == 2 and len(left) == 3  # and a temp file
    retry = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out), "--json")
    assert retry.returncode == 0, retry.stderr
    assert json.loads(retry.stdout)["kept_clips"] == 6
    assert_complete(out, 6)


@pytest.mark.parametrize("user_file,killed", [
    ("thesis.tex", True), ("wavs/notes.txt", True), ("wavs/take1.wav", True), ("wavs/take1-0123456789.wav", False),
])
def test_user_files_are_never_taken_for_an_unfinished_prepare(tmp_path: Path, source: Path, user_file: str,
                                                              killed: bool):
    out = tmp_path / "out"
    if killed:  # the user's file lies beside a killed prepare's output
        assert faulty_prepare(source, out, "KILL", "1").returncode == 137
    (out / user_file).parent.mkdir(parents=True, exist_ok=True)
    (out / user_file).write_text("keep me", encoding="utf-8")
    before = leftovers(out)
    result = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out))
    assert result.returncode == 1
    assert "folder is not empty and holds no prepared dataset" in assert_one_error_line(result.stderr)
    assert leftovers(out) == before and (out / user_file).read_text(encoding="utf-8") == "keep me"


def tmpfs_mounts_work(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0"', str(folder)],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


# In a private mount namespace: a 300 KiB tmpfs at $1, prepare into it (6 clips of about 130 KiB
# each), then grow the tmpfs to 20 MiB and prepare again; outputs go to $2.
TMPFS_RUN = """
MNT=$1 LOGS=$2
mount -t tmpfs -o size=300k tmpfs "$MNT" || exit 90
prepare() { "$PY" -m tts_host.cli.main dataset prepare "$SRC" --speaker anna -o "$MNT/out" --workers 2; }
prepare >"$LOGS/first.out" 2>"$LOGS/first.err"; echo $? >"$LOGS/first.rc"
ls -A "$MNT/out" "$MNT/out/wavs" >"$LOGS/left.txt"
mount -o remount,size=20m "$MNT"
prepare >"$LOGS/second.out" 2>"$LOGS/second.err"; echo $? >"$LOGS/second.rc"
cp "$MNT/out/manifest.json" "$LOGS/manifest.json" 2>/dev/null
exit 0
"""


def test_a_really_full_disk_is_one_error_line_and_the_retry_finishes(tmp_path: Path, source: Path):
    mount, logs = tmp_path / "mnt", tmp_path / "logs"
    mount.mkdir()
    logs.mkdir()
    if not tmpfs_mounts_work(mount):
        pytest.skip("needs `unshare -rm` and tmpfs mounts (user namespaces) to fill a real disk")
    env = {**os.environ, "PY": sys.executable, "SRC": str(source)}
    run = subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS_RUN, "tmpfs-run", str(mount), str(logs)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    first_err = (logs / "first.err").read_text(encoding="utf-8")
    assert (logs / "first.rc").read_text().strip() == "1", first_err
    line = assert_one_error_line(first_err)
    assert line.startswith(f"error: cannot write {mount}/out/wavs/") and ".wav: no space left on device (" in line
    assert ".tmp-" not in (logs / "left.txt").read_text(encoding="utf-8")
    assert (logs / "second.rc").read_text().strip() == "0", (logs / "second.err").read_text(encoding="utf-8")
    assert len(json.loads((logs / "manifest.json").read_text(encoding="utf-8"))["clips"]) == 6


@pytest.mark.parametrize("speaker", ["../x", "a/b", "a\\b", "..", " anna", "an\tna"])
def test_speaker_names_that_break_the_name_rules_are_refused_up_front(tmp_path: Path, source: Path, speaker: str):
    out = tmp_path / "out"
    result = run_cli("dataset", "prepare", str(source), "--speaker", speaker, "-o", str(out))
    assert result.returncode == 1
    assert f"error: speaker name {ascii(speaker)} " in assert_one_error_line(result.stderr)
    assert not out.exists()  # refused before any folder is made or audio read
    with pytest.raises(DatasetError, match="speaker name"):
        prepare_dataset(source, out, speaker)
    assert not out.exists()


def test_unicode_file_names_keep_their_letters_in_clip_ids(tmp_path: Path, speaker_clips):
    long_folder, long_file = "長" * 80, "語" * 80  # 240 UTF-8 bytes each: a path far over NAME_MAX as one name
    names = {
        "ünïcødé_日本.wav": "ünïcødé_日本",
        "日本.wav": "日本",
        unicodedata.normalize("NFD", "été ok.wav"): "été_ok",
        "हिंदी.wav": "हिंदी",
        "a.b\\c\x01d.wav": "a_b_c_d",
        "日本/語.wav": "日本_語",
        "日本_語.wav": "日本_語_2",
        f"{long_folder}/{long_file}.wav": None,
    }
    for (wav, _text), name in zip(speaker_clips("A", 8), names):
        target = tmp_path / "src" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, target)
        shutil.copy(wav.with_suffix(".txt"), target.with_suffix(".txt"))
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "anna", workers=1)
    ids = {clip.source: clip.id for clip in dataset.clips}
    assert len(ids) == 8 and len(set(ids.values())) == 8
    long_id = ids.pop(f"{long_folder}/{long_file}.wav")
    assert ids == {name: names[name] for name in ids}
    assert long_id == "長" * 66  # cut at 200 UTF-8 bytes, on a character boundary
    for clip in dataset.clips:
        assert clip.audio_path.is_file() and clip.audio_path.name.startswith(clip.id + "-")
        assert len(clip.audio_path.name.encode()) <= 255 and clip.audio_path.parent == tmp_path / "out" / "wavs"
    assert {clip.id for clip in load_prepared(tmp_path / "out").clips} == {clip.id for clip in dataset.clips}


def test_clip_ids_stay_unique_beside_slice_numbers(tmp_path: Path, speaker_clips):
    (first, _), (second, _) = speaker_clips("A", 2)
    (tmp_path / "src").mkdir()
    shutil.copy(first, tmp_path / "src" / "take.wav")  # untranscribed: sliced into take_000, ...
    shutil.copy(second, tmp_path / "src" / "take_000.wav")
    (tmp_path / "src" / "take_000.txt").write_text("A transcript.", encoding="utf-8")
    dataset = prepare_dataset(tmp_path / "src", tmp_path / "out", "anna", workers=1)
    ids = {clip.source: clip.id for clip in dataset.clips}
    assert ids["take_000.wav"] == "take_000_2" and ids["take.wav"] == "take_000"
