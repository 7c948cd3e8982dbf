"""`finetune` and `base init` faults: cheap checks before any model loads, saved progress never
thrown away silently, clips without transcripts, and a full disk while writing models or state."""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from library_fixtures import init_base, open_library
from cli_helpers import error_line, run_cli_here as run_cli
from test_speak_faults import cheap_runs
from tts_host.errors import TTSHostError

TRAIN = ["--epochs", "1", "--batch-size", "2", "--lr", "1e-3", "--quiet"]


def full_disk(*_args, **_kwargs):
    """Stands in for a write call on a full disk: raises ENOSPC as the OS does."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_disk_torch_save(_obj, handle, *_args, **_kwargs):
    """``torch.save`` on a full disk: part of the zip written, then its RuntimeError with the OSError as context."""
    handle.write(b"PK\x03\x04 partial")
    try:
        full_disk()
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A library with one tiny XTTS base and one tiny Llasa base."""

    home = tmp_path_factory.mktemp("finetune-faults") / "home"
    with open_library(home) as library:
        init_base(library, "xtts", "tiny", "xtts-tiny")
        init_base(library, "llasa", "tiny", "llasa-tiny")
    return home


@pytest.fixture(scope="module")
def data(tmp_path_factory, speaker_clips) -> dict[str, Path]:
    """Speaker A's clips with transcripts, the same wavs without them, and a prepared dataset of speaker B."""
    from tts_host.data import prepare_dataset

    root = tmp_path_factory.mktemp("finetune-faults-data")
    folders = {"A": root / "A", "untranscribed": root / "untranscribed"}
    for folder in folders.values():
        folder.mkdir()
    for wav, _ in speaker_clips("A", 5):
        shutil.copy(wav, folders["A"] / wav.name)
        shutil.copy(wav.with_suffix(".txt"), folders["A"] / wav.with_suffix(".txt").name)
        shutil.copy(wav, folders["untranscribed"] / wav.name)
    folders["B-prepared"] = prepare_dataset(speaker_clips("B", 5)[0][0].parent, root / "B-prepared", "B", 22050).root
    return folders


def finetune_args(speaker: str, data: Path, *extra: str, backend: str = "xtts") -> list[str]:
    return ["finetune", "--backend", backend, "--speaker", speaker, "--data", str(data), *TRAIN, *extra]


def test_cheap_finetune_checks_fail_before_any_model_loads(home, data):
    cases = [
        (finetune_args("A", data["B-prepared"]), "the prepared dataset is speaker 'B', not 'A'"),
        (finetune_args("A", data["A"], "--resume"), "there is no interrupted run of this fine-tune to resume"),
        (finetune_args("A", data["A"], "--resume", "--restart"), "give --resume (continue the interrupted run) or "
                                                                 "--restart (discard it), not both"),
        (finetune_args("N", data["untranscribed"]), "have no transcript"),
        (finetune_args("A", data["A"], "--resume", backend="llasa"), "there is no interrupted run of this fine-tune"),
        (finetune_args("N", data["untranscribed"], backend="llasa"), "have no transcript"),
    ]
    for (args, fragment), result in zip(cases, cheap_runs(home, *(args for args, _ in cases))):
        assert result["code"] == 1, (args, result)
        assert fragment in error_line(result["stderr"]), result["stderr"]
        assert result["heavy"] == [], (args, result["heavy"])  # refused before any model loaded


def test_clips_without_transcripts_are_refused_unless_allowed(home, data, monkeypatch):
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    code, _, stderr = run_cli(*finetune_args("N", data["untranscribed"]))
    line = error_line(stderr)
    assert code == 1 and re.search(r"(\d+) of \1 clips of --data \S+untranscribed .* have no transcript", line), line
    assert "--allow-empty-text" in line
    code, stdout, stderr = run_cli(*finetune_args("N", data["untranscribed"], "--allow-empty-text"))
    assert code == 0, stderr
    assert "voice 'N'" in stdout
    assert re.search(r"warning: (\d+) of \1 clips of --data .* have no transcript", stderr), stderr


@pytest.mark.parametrize("backend", ["xtts", "llasa"])
def test_a_rerun_of_an_interrupted_finetune_needs_resume_or_restart(home, data, monkeypatch, backend):

    # XTTS saves its state when interrupted; Llasa every save_every steps (not part of what must match to resume).
    stop_at, extra = (1, {}) if backend == "xtts" else (2, {"save_every": 1})

    def interrupt(step: int, *_: object) -> None:
        if step == stop_at:
            raise KeyboardInterrupt  # as Ctrl-C

    from tts_host.contract import FinetuneRequest

    speaker = f"I{backend}"
    request = FinetuneRequest(speaker, data["A"], epochs=1, batch_size=2, learning_rate=1e-3, progress=False,
                              on_step=interrupt, settings=extra)
    with open_library(home) as library, pytest.raises(KeyboardInterrupt):
        library.backend(backend).finetune(library, request)
    [refused] = cheap_runs(home, finetune_args(speaker, data["A"], backend=backend))
    line = error_line(refused["stderr"])
    assert refused["code"] == 1 and "saved its progress at step 1" in line, line
    assert "add --resume to continue it, or --restart to discard it" in line
    assert refused["heavy"] == []
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    code, stdout, stderr = run_cli(*finetune_args(speaker, data["A"], "--restart", backend=backend))
    assert code == 0, stderr
    with open_library(home) as library:
        checkpoint = library.model_of(library.voice(speaker))
        assert not checkpoint.training_config["resumed_from"]  # started again from step 0
    assert not [p for p in (home / "work" / backend).iterdir() if p.name.startswith("run-")]


def test_a_full_disk_while_saving_training_state_is_one_line_and_leaves_nothing(home, data, monkeypatch, tmp_path):
    import safetensors.torch


    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    code, _, stderr = run_cli(*finetune_args("F", data["A"], "--log-dir", str(tmp_path / "logs")))
    line = error_line(stderr)
    assert code == 1
    assert re.search(r"cannot write \S+/work/xtts/run-[0-9a-f]+/state(-best)?: no space left on device "
                     r"\([\d.]+ [KMGT]?i?B free there\)", line), line
    assert not [p for p in (home / "work").rglob("*") if ".partial" in p.name or "start-F" in p.name]
    with open_library(home) as library:
        assert "F" not in {v.name for v in library.voices()}
        assert not [c for c in library.checkpoints() if "F" in c.speakers]


@pytest.mark.parametrize("backend", ["xtts", "llasa"])
def test_a_full_disk_while_building_a_base_is_one_line_and_adds_nothing(monkeypatch, tts_home, backend):
    if backend == "xtts":
        import torch

        monkeypatch.setattr(torch, "save", full_disk_torch_save)
        written = "full/model.pth"
    else:
        import transformers.modeling_utils

        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_disk)  # save_pretrained's write
        written = "full"
    code, _, stderr = run_cli("base", "init", backend, "--preset", "tiny", "--name", "full")
    line = error_line(stderr)
    assert code == 1
    assert re.search(rf"cannot write \S+/{written}: no space left on device \([\d.]+ [KMGT]?i?B free there\)", line), line
    code, stdout, _ = run_cli("base", "list", "--json")
    assert code == 0 and "full" not in stdout
    assert not [p for p in tts_home.rglob("*") if "full" in p.relative_to(tts_home).as_posix()]


def test_a_full_disk_while_logging_metrics_is_one_line_from_the_caller(tmp_path, monkeypatch):
    from tensorboard.summary.writer import record_writer

    from tts_host.training.metrics import MetricLogger

    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    logger = MetricLogger(tmp_path / "logs")
    monkeypatch.setattr(record_writer.RecordWriter, "write", full_disk)
    with pytest.raises(TTSHostError, match=r"cannot write \S+events.out.tfevents\S+: no space left on device"):
        for step in range(1, 50):
            logger.log(step, loss=1.0 / step)
    assert thread_errors == []  # no traceback from a background writer thread


def test_an_infinite_learning_rate_is_refused_before_any_model_loads(home, data):
    results = cheap_runs(home, ["finetune", "--backend", "xtts", "--speaker", "L", "--data", str(data["A"]),
                                "--lr", "inf", "--quiet"],
                         ["finetune", "--backend", "llasa", "--speaker", "L", "--data", str(data["A"]),
                          "--lr", "inf", "--quiet"])
    for result in results:
        assert result["code"] == 1 and "learning rate must be a positive finite number" in error_line(result["stderr"])
        assert result["heavy"] == []
    assert not (home / "work" / "xtts").exists() or not list((home / "work" / "xtts").glob("run-*"))


def test_a_finetune_killed_mid_run_leaves_the_library_whole_and_resumes(home, data, tmp_path):
    import signal
    import subprocess
    import sys
    import time


    config = tmp_path / "save-often.yaml"
    config.write_text("save_every: 1\n", encoding="utf-8")
    args = ["finetune", "--backend", "xtts", "--speaker", "K", "--data", str(data["A"]), "--epochs", "4",
            "--batch-size", "1", "--lr", "1e-3", "--quiet", "--config", str(config)]
    env = {**os.environ, "TTS_HOST_HOME": str(home)}
    with open_library(home) as library:
        before = {v.name for v in library.voices()}
    child = subprocess.Popen([sys.executable, "-m", "tts_host.cli.main", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    saved = []
    while not saved and child.poll() is None and time.monotonic() < deadline:
        saved = list((home / "work" / "xtts").glob("run-*/*/state.json")) + \
            list((home / "work" / "xtts").glob("run-*/state.json"))
        time.sleep(0.2)
    assert saved and child.poll() is None, child.communicate()  # killed mid-run, after a saved step
    child.send_signal(signal.SIGKILL)
    child.wait()
    with open_library(home) as library:
        assert {v.name for v in library.voices()} == before
        assert library.verify(deep=True) == [] and library.index_problems() == []
        assert any("fine-tune work folder" in leftover.what for leftover in library.leftovers())
    resumed = subprocess.run([sys.executable, "-m", "tts_host.cli.main", *args, "--resume"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with open_library(home) as library:
        assert library.model_of(library.voice("K")).training_config["resumed_from"]
        assert library.verify(deep=True) == []
