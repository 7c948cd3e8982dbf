"""``tts-host eval``: a pretrained speaker encoder that tells espeak-ng's voices apart, and the command's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import error_line, run_cli_here
from sovits_fixtures import tiny_base_path


def test_similarity_ranks_each_speakers_own_clips_above_the_other_speakers(speaker_clips):
    from tts_host.similarity import SpeakerSimilarity

    encoder = SpeakerSimilarity()
    clips = {name: [wav for wav, _ in speaker_clips(name, 8)] for name in "ABCD"}
    references = {name: encoder.embed_files(paths[:4]) for name, paths in clips.items()}
    held_out = {name: [encoder.embed_files([p]) for p in paths[4:]] for name, paths in clips.items()}
    for name, reference in references.items():
        own = np.mean([encoder.similarity(v, reference) for v in held_out[name]])
        others = {other: np.mean([encoder.similarity(v, reference) for v in vectors])
                  for other, vectors in held_out.items() if other != name}
        assert own > max(others.values()), (name, own, others)


def test_eval_scores_a_voice_as_table_json_and_chart(tmp_path_factory, speaker_clips, tmp_path, monkeypatch):
    clips = speaker_clips("A", 2)
    ref = tmp_path / "ref.wav"
    audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
    sf.write(ref, np.concatenate([a for a, _ in audio]), audio[0][1])
    monkeypatch.setenv("TTS_HOST_HOME", str(tmp_path / "home"))
    for args in (("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny"),
                 ("voices", "add", "ada", "--backend", "sovits", "--base", "tiny", "--ref", str(ref),
                  "--ref-text", " ".join(text for _, text in clips), "--language", "en")):
        code, out, err = run_cli_here(*args)
        assert code == 0, out + err
    chart = tmp_path / "eval.png"
    code, out, err = run_cli_here("eval", "ada", "--json", "--png", str(chart), "--before", "base:tiny")
    assert code == 0, out + err
    report = json.loads(out)
    [score], [before] = report["scores"], report["before"]
    assert score["voice"] == "ada" and score["model"] == "base 'tiny'" and score["sentences"] == 3
    assert -1.0 <= score["similarity"] <= 1.0 and score["real_time_factor"] > 0 and score["recordings"] == 1
    assert before["similarity"] == pytest.approx(score["similarity"])  # the same model: the same speech
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run_cli_here("eval", "ada")
    assert code == 0 and "similarity" in out and "ada" in out
    code, _, err = run_cli_here("eval", "nobody")
    assert code == 1 and "nobody" in error_line(err)


def test_voices_map_places_two_voices_of_one_speaker_closest(tmp_path_factory, speaker_clips, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_HOST_HOME", str(tmp_path / "home"))
    code, out, err = run_cli_here("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")
    assert code == 0, out + err
    voices = {"A": ("A", 0), "A2": ("A", 2), "B": ("B", 0), "C": ("C", 0)}  # A2: other clips of speaker A
    for name, (speaker, first) in voices.items():
        clips = speaker_clips(speaker, 4)[first:first + 2]
        ref = tmp_path / f"{name}.wav"
        audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
        sf.write(ref, np.concatenate([a for a, _ in audio]), audio[0][1])
        code, out, err = run_cli_here("voices", "add", name, "--backend", "sovits", "--base", "tiny", "--ref", str(ref),
                                      "--ref-text", " ".join(text for _, text in clips), "--language", "en")
        assert code == 0, out + err
    chart = tmp_path / "map.png"
    code, out, err = run_cli_here("voices", "map", "-o", str(chart), "--json")
    assert code == 0, out + err
    points = {p["voice"]: np.array([p["x"], p["y"]]) for p in json.loads(out)}
    assert set(points) == set(voices) and {p["backend"] for p in json.loads(out)} == {"sovits"}
    distance = {other: float(np.linalg.norm(points["A"] - points[other])) for other in ("A2", "B", "C")}
    assert distance["A2"] < min(distance["B"], distance["C"]), distance
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
