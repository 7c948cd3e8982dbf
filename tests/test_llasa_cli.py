"""The llasa backend through the tts-host command line: exit codes, files written, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_fixtures import prepared_speaker, tiny_base  # noqa: F401  (fixture)
from cli_helpers import assert_forgetting_recorded, run_cli_here


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI run in this process (the same ``main`` as the console script), as a finished process."""
    code, out, err = run_cli_here(*args)
    return subprocess.CompletedProcess(["tts-host", *args], code, out, err)


def _ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.smoke
@pytest.mark.slow
def test_init_finetune_lora_speak_clone_export(tmp_path_factory, speaker_clips, tmp_path: Path):
    data_a = prepared_speaker(tmp_path_factory, speaker_clips, "A").root
    data_b = prepared_speaker(tmp_path_factory, speaker_clips, "B").root
    _ok(run_cli("base", "init", "llasa", "--preset", "tiny"))
    common = ["--epochs", "2", "--batch-size", "2", "--quiet"]
    out = _ok(run_cli("finetune", "--backend", "llasa", "--speaker", "A", "--data", str(data_a), "--lr", "2e-3",
                      *common))
    assert "stored checkpoint" in out and "voice 'A'" in out and "training loss" in out
    _one_line_error(run_cli("finetune", "--backend", "llasa", "--speaker", "B", "--data", str(data_b),
                            "--from", "A", "--lora", "0", *common), "LoRA rank must be a positive integer")
    out = _ok(run_cli("finetune", "--backend", "llasa", "--speaker", "B", "--data", str(data_b), "--from", "A",
                      "--lora", "4", "--lr", "1e-2", "--replay", "0.25", *common))
    assert "LoRA rank 4" in out and "earlier speaker A: held-out loss" in out
    shown = json.loads(_ok(run_cli("voices", "show", "B", "--json")))
    assert_forgetting_recorded(shown, new="B", earlier="A")

    wav = tmp_path / "b.wav"
    _ok(run_cli("speak", "--voice", "B", "The quick brown fox.", "-o", str(wav), "--max-length", "400",
                "--temperature", "0.7"))
    audio, rate = sf.read(wav)
    assert rate == 16000 and np.abs(audio).max() > 1e-3

    ref, ref_text = speaker_clips("C", 1)[0]
    out = _ok(run_cli("voices", "add", "cloned", "--backend", "llasa", "--ref", str(ref), "--ref-text", ref_text))
    assert "added voice 'cloned'" in out

    export = tmp_path / "hf"
    _ok(run_cli("voices", "export", "B", "--format", "hf", "-o", str(export)))
    assert (export / "model.safetensors").is_file() and (export / "codec" / "model.safetensors").is_file()
    assert not (export / "adapter_config.json").exists()
    assert json.loads((export / "voice.json").read_text())["speaker_tag"] == "B"


def test_base_add_with_a_separate_codec_folder_and_bad_tokenizer(tiny_base: Path, tmp_path: Path):
    model_dir, codec_dir = tmp_path / "Llasa-tiny", tmp_path / "xcodec2"
    shutil.copytree(tiny_base / "model", model_dir)
    shutil.copytree(tiny_base / "codec", codec_dir)
    out = _ok(run_cli("base", "add", "llasa", str(model_dir), "--codec", str(codec_dir)))
    assert "added base 'Llasa-tiny'" in out
    listing = json.loads(_ok(run_cli("base", "list", "--json")))
    assert [b["name"] for b in listing] == ["Llasa-tiny"]

    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if not t["content"].startswith("<|s_")]
    (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    _one_line_error(run_cli("base", "add", "llasa", str(model_dir), "--codec", str(codec_dir), "--name", "bad"),
                    "tokenizer.json", "no speech tokens")
    listing = json.loads(_ok(run_cli("base", "list", "--json")))
    assert [b["name"] for b in listing] == ["Llasa-tiny"]  # nothing half-added
