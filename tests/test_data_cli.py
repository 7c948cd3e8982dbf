"""``tts-host dataset prepare`` and ``inspect`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_helpers import copy_clips
from plugin_dists import run_cli


@pytest.fixture
def source(tmp_path: Path, speaker_clips) -> Path:
    copy_clips(speaker_clips("A", 6), tmp_path / "src")
    (tmp_path / "src" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    (tmp_path / "src" / "hum.wav").write_bytes(b"")
    return tmp_path / "src"


def test_prepare_writes_the_dataset_and_prints_the_summary(tmp_path: Path, source: Path):
    out = tmp_path / "out"
    result = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "--sample-rate", "24000", "-o", str(out),
                     env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sample_rate"] == 24000 and len(manifest["clips"]) == 6
    assert len(list((out / "wavs").glob("*.wav"))) == 6
    assert (out / "clips.csv").read_text(encoding="utf-8").splitlines()[0] == \
        "id|audio|text|speaker|language|split|duration|sha256"
    for text in ("anna: 6 clips kept", "2 rejected", "undecodable", "empty_file", "broken.wav", "clip durations", "2-3",
                 "source files: 8 processed, 0 unchanged"):
        assert text in result.stdout, text
    assert "preparing" in result.stderr  # the progress bar goes to stderr


def test_inspect_reprints_as_json_and_plots(tmp_path: Path, source: Path):
    out = tmp_path / "out"
    assert run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out), "--json").returncode == 0
    result = run_cli("dataset", "inspect", str(out), "--json", "--plot", str(tmp_path / "plot.png"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kept_clips"] == 6 and report["train_clips"] + report["heldout_clips"] == 6
    assert report["reasons"] == {"undecodable": {"count": 1, "seconds": 0.0}, "empty_file": {"count": 1, "seconds": 0.0}}
    assert sum(count for _, _, count in report["histogram"]) == 6
    png = (tmp_path / "plot.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_thresholds_from_a_config_file_and_options(tmp_path: Path, source: Path):
    config = tmp_path / "data.yaml"
    config.write_text("data:\n  min_seconds: 2.5\n", encoding="utf-8")
    result = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(tmp_path / "out"),
                     "--config", str(config), "--max-seconds", "10", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reasons"].get("too_short", {}).get("count", 0) >= 1
    settings = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["settings"]
    assert (settings["min_seconds"], settings["max_seconds"]) == (2.5, 10.0)


@pytest.mark.parametrize("args,message", [
    (["prepare", "{missing}", "--speaker", "x", "-o", "{out}"], "no such file or folder"),
    (["prepare", "{src}", "--speaker", "x", "-o", "{out}", "--config", "{bad}"], "unknown dataset setting 'speed'"),
    (["prepare", "{src}", "--speaker", "x", "-o", "{out}", "--min-seconds", "20"], "invalid dataset settings"),
    (["inspect", "{src}"], "not a prepared dataset"),
])
def test_bad_input_exits_1_with_one_line(tmp_path: Path, source: Path, args, message):
    (tmp_path / "bad.yaml").write_text("data:\n  speed: 3\n", encoding="utf-8")
    paths = {"missing": tmp_path / "nope", "out": tmp_path / "out", "src": source, "bad": tmp_path / "bad.yaml"}
    result = run_cli("dataset", *[arg.format(**paths) for arg in args])
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_dataset_commands_start_without_audio_libraries():
    code = (
        "import sys\nfrom tts_host.cli.main import main\n"
        "try:\n    main(['dataset', 'prepare', '--help'])\nexcept SystemExit as exc:\n    assert not exc.code\n"
        "print(sorted(m for m in ('librosa', 'soundfile', 'torch', 'tts_host.data.prepare', 'matplotlib') "
        "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_bad_metadata_lines_are_listed_one_line_each(tmp_path: Path, speaker_clips):
    clips = speaker_clips("C", 3)
    copy_clips(clips, tmp_path / "lj" / "wavs", transcripts=False)
    lines = [f"{wav.stem}|{text}|{text}".encode() for wav, text in clips]
    lines += [b"LJ999-0001|A line for a file that is not there.|", "LJ-\u00e9t\u00e9|\u00e9t\u00e9|".encode("cp1252"),
              f"{clips[0][0].stem}|  |".encode()]
    (tmp_path / "lj" / "metadata.csv").write_bytes(b"\n".join(lines) + b"\n")
    result = run_cli("dataset", "prepare", str(tmp_path / "lj"), "--speaker", "cy", "-o", str(tmp_path / "out"),
                     env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    for text in ("cy: 3 clips kept", "3 rejected", "metadata.csv line 4: names 'LJ999-0001', which does not exist",
                 "metadata.csv line 5: not UTF-8 (byte 0xe9 at column 4)", "line 6: ", "empty transcript"):
        assert text in result.stdout, text


def test_inspect_names_missing_clip_files(tmp_path: Path, source: Path):
    out = tmp_path / "out"
    assert run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out), "--json").returncode == 0
    victim = sorted((out / "wavs").glob("*.wav"))[2]
    victim.unlink()
    result = run_cli("dataset", "inspect", str(out))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "1 clip file(s) missing" in result.stderr and victim.name in result.stderr
    again = run_cli("dataset", "prepare", str(source), "--speaker", "anna", "-o", str(out), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["processed"] == 1 and victim.exists()
