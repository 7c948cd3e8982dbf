"""`speak` and `voices add` faults: long texts, cheap checks before any model loads, `-o -`, bad references.

Checks that need no model must fail before one loads: each such command runs in a fresh
interpreter that then reports whether torch, coqui-tts or transformers were imported.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from library_fixtures import clone, init_base, open_library
from cli_helpers import error_line, run_cli_here as run_cli
from tts_host.speech import speech_seconds_limit

HEAVY = ("torch", "TTS", "transformers")
SENTENCES = ["The quick brown fox jumps over the lazy dog near the quiet river bank.",
             "A second sentence follows here, with a clause or two, to make this paragraph longer.",
             "Then a third one arrives, carrying rather more words than this test strictly needs.",
             "The fourth sentence talks about the weather, which is mild and pleasant today.",
             "A fifth sentence wonders, out loud, whether the model will cope with all of it.",
             "Finally, the sixth sentence brings this long paragraph to its very end, at last."]
PARAGRAPH = " ".join(SENTENCES)  # 480 characters: over the tiny XTTS's 400 text tokens
PAUSE = 0.3  # seconds of silence between sentences (tts_host.speech.PAUSE_SECONDS)

# Runs CLI commands one after another in this fresh interpreter; after each, which heavy modules are loaded.
RUNNER = """
import contextlib, io, json, sys
from tts_host.cli.main import main
results = []
for args in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "heavy": [m for m in %r if m in sys.modules]})
print(json.dumps(results))
""" % (HEAVY,)


def cheap_runs(home: Path, *commands: list[str]) -> list[dict]:
    """Run ``tts-host`` commands in one fresh interpreter; each result lists the heavy modules loaded by then."""
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(commands)], capture_output=True, text=True,
                          env={**os.environ, "TTS_HOST_HOME": str(home)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def pauses(audio: np.ndarray, rate: int) -> int:
    """Runs of exact digital silence at least 80 % of a sentence pause long (the model never makes them)."""
    silent = np.concatenate([[False], audio == 0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    lengths = edges[1::2] - edges[0::2]
    return int((lengths >= 0.8 * PAUSE * rate).sum())


@pytest.fixture(scope="module")
def home(tmp_path_factory, speaker_clips) -> Path:
    """A library with a tiny XTTS base and voice ``x``, and a tiny Llasa base and voice ``l``, both cloned."""

    home = tmp_path_factory.mktemp("speak-faults") / "home"
    clip = speaker_clips("A", 1)[0][0]  # its .txt transcript lies beside it (Llasa cloning reads it)
    with open_library(home) as library:
        clone(library, "x", "xtts", init_base(library, "xtts", "tiny", "xtts-tiny"), [clip], language="en")
        clone(library, "l", "llasa", init_base(library, "llasa", "tiny", "llasa-tiny"), [clip])
    return home


def test_split_text_cuts_sentences_then_clauses_then_words():
    from tts_host.speech import PAUSE_SECONDS, split_text

    assert PAUSE_SECONDS == PAUSE
    assert split_text(PARAGRAPH, 250) == SENTENCES
    assert split_text('Dr. Smith said "hi!" Then J. R. Tolkien wrote 3.5 books... Really? 你好。谢谢', 250) == [
        'Dr. Smith said "hi!"', "Then J. R. Tolkien wrote 3.5 books...", "Really?", "你好。", "谢谢"]
    pieces = split_text("A long sentence, with clauses; and more words than fit in forty characters - many", 40)
    assert pieces == ["A long sentence, with clauses;", "and more words than fit in forty",
                      "characters - many"]
    assert split_text("abcdefghijkl", 5) == ["abcde", "fghij", "kl"] and split_text("  ", 5) == []


# The streamed case speaks three of the sentences: streaming goes through the same sentence split
# (the plain case proves the paragraph past the 400-token limit), and coqui's stream decodes all
# audio so far at every chunk, which makes a whole paragraph from a model that never stops slow.
@pytest.mark.parametrize("voice, stream, sentences", [("x", False, 6), ("x", True, 3), ("l", False, 6)])
def test_a_paragraph_is_spoken_sentence_by_sentence(home, monkeypatch, tmp_path, voice, stream, sentences):
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    out = tmp_path / "paragraph.wav"
    text = " ".join(SENTENCES[:sentences])
    code, stdout, stderr = run_cli("speak", "--voice", voice, text, "-o", str(out), *(["--stream"] * stream))
    assert code == 0, stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == (24000 if voice == "x" else 16000)
    # A pause between each two sentences; no sentence longer than its own budget.
    gaps = sentences - 1
    assert pauses(audio, rate) >= gaps
    budget = sum(speech_seconds_limit(s) for s in SENTENCES[:sentences]) + gaps * PAUSE
    assert gaps * PAUSE < len(audio) / rate <= budget + 1.0
    assert ("time to first audio" in stdout) == stream


def test_cheap_speak_checks_fail_before_any_model_loads(home, tmp_path):
    out = str(tmp_path / "never.wav")
    cases = [
        (["--voice", "x", ""], "the text to speak is empty"),
        (["--voice", "x", "Hello.", "--language", "klingon"], "language 'klingon' is not supported (supported: en, "),
        (["--voice", "x", "Hello.", "--temperature", "-1"], "--temperature -1.0: must be greater than 0"),
        (["--voice", "x", "Hello.", "--top-p", "0"], "--top-p 0.0: must be in (0, 1]"),
        (["--voice", "x", "Hello.", "--top-k", "0"], "--top-k 0: must be at least 1"),
        (["--voice", "x", "Hello.", "--repetition-penalty", "0"], "--repetition-penalty 0.0: must be greater than 0"),
        (["--voice", "l", "   "], "the text to speak is empty"),
        (["--voice", "l", "Hello.", "--max-length", "0"], "--max-length 0: must be at least 1"),
        (["--voice", "l", "Hello.", "--temperature", "-1"], "--temperature -1.0: must be at least 0 (0 means greedy)"),
    ]
    if importlib.util.find_spec("pypinyin") is None:  # coqui's Chinese frontend; not installed with coqui-tts
        cases.append((["--voice", "x", "你好", "--language", "zh-cn"],
                      "language 'zh-cn' needs the Python package(s) pypinyin, not installed here: "
                      "pip install pypinyin"))
    results = cheap_runs(home, *(["speak", *args, "-o", out] for args, _ in cases))
    for (args, fragment), result in zip(cases, results):
        assert result["code"] == 1, (args, result)
        assert fragment in error_line(result["stderr"]), (args, result["stderr"])
        assert result["heavy"] == [], (args, result["heavy"])  # refused before any model loaded
    assert not Path(out).exists()


def test_dash_output_writes_the_wav_to_standard_output(home, tmp_path):
    """In a fresh process, streamed (coqui's streaming generate is set up by the acoustic model itself)."""
    proc = subprocess.run([sys.executable, "-m", "tts_host.cli.main", "speak", "--voice", "x", "Hello there.",
                           "-o", "-", "--stream"], capture_output=True, cwd=tmp_path,
                          env={**os.environ, "TTS_HOST_HOME": str(home)}, timeout=300)
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")  # stdout holds the wav and nothing else
    assert proc.stdout[:4] == b"RIFF" and rate == 24000 and len(audio) > 0
    assert "wrote standard output (" in stderr and "time to first audio" in stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_bad_reference_clips_are_refused_by_name_before_the_model_loads(home, tmp_path):
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n")
    noise = (np.random.default_rng(0).standard_normal(22050) * 0.1).astype(np.float32)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.where(np.arange(22050) == 100, np.nan, noise), 22050, subtype="FLOAT")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050, np.float32), 22050)
    short = tmp_path / "short.wav"
    sf.write(short, noise[:2205], 22050)
    cases = [("xtts", text, "cannot decode"), ("xtts", nan, "NaN or infinite samples"),
             ("xtts", silent, "the audio is silent"), ("xtts", short, "0.10 s of audio is too short"),
             ("llasa", nan, "NaN or infinite samples")]
    results = cheap_runs(home, *(["voices", "add", "r2", "--backend", backend, "--ref", str(ref)]
                                 for backend, ref, _ in cases), ["voices", "list", "--json"])
    for (backend, ref, fragment), result in zip(cases, results):
        assert result["code"] == 1, (ref, result)
        line = error_line(result["stderr"])
        assert f"reference clip {ref}" in line and fragment in line, line
        assert result["heavy"] == [], (ref, result["heavy"])
    assert "r2" not in {v["name"] for v in json.loads(results[-1]["stdout"])}


@pytest.mark.parametrize("voice", ["x", "l"])
def test_speak_checks_the_voice_cheaply_and_refuses_a_damaged_file(home, monkeypatch, tmp_path, voice):
    import shutil

    from library_fixtures import flip_byte
    from tts_host.speakers import integrity

    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    monkeypatch.setenv("TTS_HOST_HOME", str(copy))
    with open_library(copy) as library:
        assert library.verify(deep=True) == []  # fills the stat cache of the copied blobs
        model_file = next(f for f in library.model_of(library.voice(voice)).files if f.role in ("model", "lm_weights"))
    hashed = []
    real = integrity.sha256_file
    for module in [m for name, m in sys.modules.items() if name.startswith("tts_host.") and hasattr(m, "sha256_file")]:
        monkeypatch.setattr(module, "sha256_file", lambda path: hashed.append(path) or real(path))
    code, _, stderr = run_cli("speak", "--voice", voice, "Hi there.", "-o", str(tmp_path / "ok.wav"))
    assert code == 0, stderr
    assert hashed == []  # the stat cache vouched for every file: nothing re-hashed
    with open_library(copy) as library:
        flip_byte(library.blob_path(model_file.sha256), 1000)
    code, _, stderr = run_cli("speak", "--voice", voice, "Hi there.", "-o", str(tmp_path / "bad.wav"))
    line = error_line(stderr)
    assert code == 1 and "cannot speak" in line and model_file.path in line and "damaged" in line, line
    assert not (tmp_path / "bad.wav").exists()
