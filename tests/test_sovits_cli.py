"""SoVITS through the command line on the tiny preset: a zero-shot clone that speaks (faster with --speed),
and every refusal one line: references outside 3-10 s, silent or without a transcript; speech requests
the backend cannot take; a LoRA fine-tune; a bad --config file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import cli_ok, cli_refused
from sovits_fixtures import tiny_base_path

VOICE = "Vera"
TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def library(tmp_path_factory, speaker_clips) -> dict:
    """A library home with the tiny base and voice Vera cloned zero-shot from 5.7 s of speech; reference clips."""
    root = tmp_path_factory.mktemp("sovits-cli")
    home = root / "home"
    clips = speaker_clips("A", 5)
    audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
    rate = audio[0][1]
    refs = root / "refs"
    refs.mkdir()

    def write(name: str, samples: np.ndarray) -> Path:
        sf.write(refs / name, samples, rate)
        return refs / name

    joined = np.concatenate([a for a, _ in audio])
    assert len(joined) > 12 * rate
    made = {
        "ok": write("ok.wav", np.concatenate([audio[0][0], audio[1][0]])),  # about 5.7 s
        "short": write("short.wav", audio[0][0][: 2 * rate]),
        "long": write("long.wav", joined[: 12 * rate]),
        "silent": write("silent.wav", np.zeros(5 * rate, dtype=np.float32)),
    }
    text = " ".join(t for _, t in clips[:2])
    previous = os.environ.get("TTS_HOST_HOME")
    os.environ["TTS_HOST_HOME"] = str(home)
    try:
        cli_ok("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")
        added = cli_ok("voices", "add", VOICE, "--backend", "sovits", "--ref", str(made["ok"]), "--ref-text", text)
    finally:
        if previous is None:
            os.environ.pop("TTS_HOST_HOME", None)
        else:
            os.environ["TTS_HOST_HOME"] = previous
    return {"home": home, "refs": made, "text": text, "added": added, "data": clips[0][0].parent}


@pytest.fixture
def home(library, monkeypatch) -> Path:
    monkeypatch.setenv("TTS_HOST_HOME", str(library["home"]))
    return library["home"]


def _speak(out: Path, *options: str, text: str = TEXT) -> tuple[np.ndarray, int]:
    cli_ok("speak", "--voice", VOICE, text, "-o", str(out), *options)
    return sf.read(out)


def test_zero_shot_clone_speaks_32_khz_audio(library, home, tmp_path):
    assert f"added voice '{VOICE}' (sovits, base 'tiny', 1 reference clip(s))" in library["added"]
    listed = json.loads(cli_ok("voices", "list", "--json"))
    assert [v["name"] for v in listed] == [VOICE]
    audio, rate = _speak(tmp_path / "x.wav")
    assert rate == 32000 and len(audio) > rate // 4
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3


def test_faster_speech_is_shorter(home, tmp_path):
    fast, rate = _speak(tmp_path / "fast.wav", "--speed", "1.5", "--seed", "3")
    slow, _ = _speak(tmp_path / "slow.wav", "--speed", "0.75", "--seed", "3")
    assert len(fast) / len(slow) == pytest.approx(0.5, rel=0.05)  # the same tokens, said twice as fast


@pytest.mark.parametrize("which, seconds", [("short", "2.00"), ("long", "12.00")])
def test_reference_outside_3_to_10_s_refused(library, home, which, seconds):
    ref = library["refs"][which]
    line = cli_refused("voices", "add", "Other", "--backend", "sovits", "--ref", str(ref), "--ref-text", library["text"])
    assert f"{ref} is {seconds} s long" in line and "3-10 s" in line


def test_silent_reference_refused(library, home):
    ref = library["refs"]["silent"]
    line = cli_refused("voices", "add", "Other", "--backend", "sovits", "--ref", str(ref), "--ref-text", "Hello there.")
    assert str(ref) in line and "silent" in line


def test_reference_without_transcript_refused_naming_it(library, home, tmp_path):
    ref = tmp_path / "untold.wav"
    shutil.copy(library["refs"]["ok"], ref)
    line = cli_refused("voices", "add", "Other", "--backend", "sovits", "--ref", str(ref))
    assert str(ref) in line and "--ref-text" in line and "untold.txt" in line
    assert [v["name"] for v in json.loads(cli_ok("voices", "list", "--json"))] == [VOICE]


@pytest.mark.parametrize("args, expected", [
    (("--language", "ja", "--ref-text", "The quick brown fox."), ("'ja'", "English (en)", "Chinese (zh)")),
    (("--ref-text", "你好，世界。"), ("reference transcript", "你好，世界。", "no English words")),
    (("--language", "zh", "--ref-text", "Hello there, world."), ("reference transcript", "no Chinese words")),
], ids=["language", "chinese-transcript-as-english", "english-transcript-as-chinese"])
def test_clone_refuses_what_the_voice_could_never_speak(library, home, args, expected):
    """A voice whose reference transcript has no phonemes in its language would fail every speak: refused."""
    line = cli_refused("voices", "add", "Other", "--backend", "sovits", "--ref", str(library["refs"]["ok"]), *args)
    assert all(part in line for part in expected), line
    assert [v["name"] for v in json.loads(cli_ok("voices", "list", "--json"))] == [VOICE]


@pytest.mark.parametrize("args, expected", [
    (("--language", "ja"), ("'ja'", "English (en)", "Chinese (zh)")),
    (("--speed", "5"), ("--speed", "between 0.25 and 4.0", "5")),
    (("--top-k", "-1"), ("--top-k -1", "at least 0")),
    (("--top-p", "1.5"), ("--top-p 1.5", "(0, 1]")),
    (("--temperature", "-0.5"), ("--temperature -0.5", "at least 0")),
    (("--repetition-penalty", "0"), ("--repetition-penalty 0", "greater than 0")),
    (("--max-length", "0"), ("--max-length 0", "at least 1")),
    (("--temperature", "nan"), ("--temperature nan", "finite")),
], ids=["language", "speed", "top-k", "top-p", "temperature", "repetition-penalty", "max-length", "nan"])
def test_speak_refusals(home, tmp_path, args, expected):
    out = tmp_path / "x.wav"
    line = cli_refused("speak", "--voice", VOICE, TEXT, "-o", str(out), *args)
    assert all(part in line for part in expected), line
    assert not out.exists()


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_refused(home, tmp_path, text):
    out = tmp_path / "x.wav"
    assert "the text to speak is empty" in cli_refused("speak", "--voice", VOICE, text, "-o", str(out))
    assert not out.exists()


def test_unknown_voice_refused(home, tmp_path):
    out = tmp_path / "x.wav"
    line = cli_refused("speak", "--voice", "Nobody", TEXT, "-o", str(out))
    assert "'Nobody'" in line and not out.exists()


def _finetune(library: dict, *args: str) -> str:
    return cli_refused("finetune", "--backend", "sovits", "--speaker", "S", "--data", str(library["data"]), "--quiet",
                    *args)


def _no_work_done(home: Path) -> None:
    assert not (home / "datasets").exists() and not (home / "work").exists()
    assert [v["name"] for v in json.loads(cli_ok("voices", "list", "--json"))] == [VOICE]


def test_lora_finetune_refused_before_any_work(library, home):
    line = _finetune(library, "--lora", "4")
    assert "sovits" in line and "LoRA" in line and "--lora" in line
    _no_work_done(home)


@pytest.mark.parametrize("body, expected", [
    ("finetune:\n  s2_epochs: 1\n  s3_epochs: 2\n", ("no fine-tune setting s3_epochs", "s2_epochs")),
    ("finetune:\n  s2_epochs: many\n", ("fine-tune setting s2_epochs must be an integer", "'many'")),
], ids=["unknown-key", "wrong-type"])
def test_bad_config_refused_naming_file_and_key(library, home, tmp_path, body, expected):
    config = tmp_path / "sovits.yaml"
    config.write_text(body, encoding="utf-8")
    line = _finetune(library, "--config", str(config))
    assert str(config) in line and all(part in line for part in expected), line
    _no_work_done(home)
