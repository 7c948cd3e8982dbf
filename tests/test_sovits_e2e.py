"""SoVITS end to end through the command line: A -> B -> C sequential voices on the tiny preset,
every earlier speaker's held-out losses recorded for both stages, every voice speaking 32 kHz audio,
and the protected semantic part checked before training and restored by repair."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import assert_forgetting_recorded, error_line, run_cli_here
from sovits_fixtures import fast_config, prepared_speaker, tiny_base_path


def _ok(*args: str) -> str:
    code, out, err = run_cli_here(*args)
    assert code == 0, out + err
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory, speaker_clips):
    """A library home with the tiny base and voices A, B (from A, replay 0.25) and C (from B)."""
    home = tmp_path_factory.mktemp("sovits-chain") / "home"
    previous = os.environ.get("TTS_HOST_HOME")
    os.environ["TTS_HOST_HOME"] = str(home)
    try:
        config = fast_config(tmp_path_factory.mktemp("sovits-config"))
        data = {name: prepared_speaker(tmp_path_factory, speaker_clips, name)
                for name in "ABC"}
        _ok("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")
        calls, outputs = [], {}
        starts = {"A": ("--base", "tiny", "--consent", "A agreed in writing.", "--source", "espeak-ng voice en-us"),
                  "B": ("--from", "A", "--replay", "0.25"), "C": ("--from", "B")}
        with pytest.MonkeyPatch.context() as patch:  # count the semantic codec's encodes (HuBERT passes)
            from tts_host.plugins.sovits.components import SemanticCodec

            encode = SemanticCodec.encode
            patch.setattr(SemanticCodec, "encode", lambda self, wave: calls.append(1) or encode(self, wave))
            for name, start in starts.items():
                before = len(calls)
                outputs[name] = _ok("finetune", "--backend", "sovits", "--speaker", name, "--data", str(data[name]),
                                    *start, "--config", str(config), "--quiet")
                outputs[f"encodes-{name}"] = len(calls) - before
        shown = {name: json.loads(_ok("voices", "show", name, "--json")) for name in "ABC"}
    finally:
        if previous is None:
            os.environ.pop("TTS_HOST_HOME", None)
        else:
            os.environ["TTS_HOST_HOME"] = previous
    return {"home": home, "data": data, "config": config, "outputs": outputs, "shown": shown}


@pytest.mark.smoke
def test_sequential_voices_record_both_stages_losses_for_every_earlier_speaker(chain):
    assert "stored checkpoint 3 (speakers: A, B, C)" in chain["outputs"]["C"]
    assert "earlier speaker A: held-out loss" in chain["outputs"]["C"]
    assert_forgetting_recorded(chain["shown"]["B"], new="B", earlier="A")
    training = chain["shown"]["C"]["training"]
    assert set(training["heldout"]) == {"A", "B", "C"} and set(training["forgetting"]) == {"A", "B"}
    def falls(losses: list[float]) -> bool:  # each step is one batch and s2's segments are random: halves
        half = len(losses) // 2
        return sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half

    for name in "ABC":
        new = chain["shown"][name]["training"]
        stages = new["stages"]
        assert falls(stages["s1"]["losses"]), (name, stages["s1"]["losses"])
        s2_heldout = stages["s2"]["heldout"]
        assert set(s2_heldout) == set(new["heldout"])  # s2's held-out loss of every speaker, before and after
        assert s2_heldout[name]["after"] < s2_heldout[name]["before"], name
    # From the random base, both stages' training losses and held-out losses fall. Later tiny fine-tunes
    # continue a trained s2 (its training loss has levelled off) and fit six clips' token sequences with s1:
    # their held-out changes are recorded above, the new speaker's s2 held-out loss falls.
    assert chain["shown"]["A"]["consent"]["statement"] == "A agreed in writing."  # kept by the fine-tune
    assert chain["shown"]["A"]["consent"]["source"] == "espeak-ng voice en-us" and chain["shown"]["B"]["consent"] is None
    first = chain["shown"]["A"]["training"]
    assert falls(first["stages"]["s2"]["losses"]) and first["heldout"]["A"]["rise"] < -0.1


def test_semantic_codes_are_computed_once_per_clip_across_epochs_and_runs(chain):
    """Two s2 and five s1 epochs, A's clips replayed and held out in later runs: one HuBERT pass per clip,
    and one for the voice's reference."""
    from tts_host.data import load_prepared

    for name in "ABC":
        assert chain["outputs"][f"encodes-{name}"] == len(load_prepared(chain["data"][name]).clips) + 1, name


def test_every_voice_speaks_32_khz_audio(chain, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    for name in "ABC":
        wav = tmp_path / f"{name}.wav"
        out = _ok("speak", "--voice", name, "The quick brown fox. It jumps.", "-o", str(wav), "--stream",
                  "--max-length", "200")
        assert "time to first audio" in out
        audio, rate = sf.read(wav)
        assert rate == 32000 and len(audio) > rate // 4 and np.abs(audio).max() > 1e-3 and np.isfinite(audio).all()


def test_the_semantic_files_stay_the_base_blobs(chain, monkeypatch):
    from tts_host.speakers import Library

    from tts_host.host import get_host

    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    with Library(chain["home"], host=get_host()) as lib:
        base = {f.role: f.sha256 for f in lib.base("tiny").files}
        for checkpoint in lib.checkpoints():
            files = {f.role: f.sha256 for f in checkpoint.files}
            for role in ("s2_semantic", "hubert_weights", "hubert_config", "s2_config", "s1_config"):
                assert files[role] == base[role], (checkpoint.label, role)
            assert files["s2_generator"] != base["s2_generator"] and files["s1_weights"] != base["s1_weights"]


def test_a_changed_codebook_value_is_refused_naming_the_tensor_and_repair_restores_it(chain, tmp_path, monkeypatch,
                                                                                      speaker_clips):
    from safetensors.torch import load_file, save_file

    from tts_host.host import get_host
    from tts_host.speakers import Library

    home = tmp_path / "home"
    shutil.copytree(chain["home"], home)
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    with Library(home, host=get_host()) as lib:
        base = lib.base("tiny")
        checkpoint = lib.checkpoint(1)
        paths = {f.role: lib.blob_path(f.sha256) for f in checkpoint.files}
        semantic = load_file(str(paths["s2_semantic"]))
        semantic["quantizer.vq.layers.0._codebook.embed"][3, 5] += 0.5  # one value of the codebook
        changed = tmp_path / "semantic.safetensors"
        save_file(semantic, str(changed))
        files = {"s2_semantic": changed, "s2_generator": paths["s2_generator"], "s1_weights": paths["s1_weights"]}
        tampered = lib.add_checkpoint("sovits", base, None, ["T"], files, {}, {})
        lib.add_voice("T", "sovits", tampered, lib.voice_conditioning(lib.voice("A")))
    data_d = speaker_clips("D", 8)[0][0].parent
    code, out, err = run_cli_here("finetune", "--backend", "sovits", "--speaker", "D", "--data", str(data_d),
                                  "--from", "T", "--config", str(chain["config"]), "--quiet")
    line = error_line(err)
    assert code == 1 and "s2/semantic.safetensors" in line and "quantizer.vq.layers.0._codebook.embed" in line
    assert "1 of" in line and "voices repair" in line and "training loss" not in out
    code, _, err = run_cli_here("voices", "verify", "T")
    assert code == 1 and "CHANGED" in err and "quantizer.vq.layers.0._codebook.embed" in err
    assert "s2/semantic.safetensors restored from the base" in _ok("voices", "repair", "T")
    assert "all files intact" in _ok("voices", "verify", "T")
    with Library(home, host=get_host()) as lib:
        restored = {f.role: f.sha256 for f in lib.checkpoint(tampered.id).files}
        assert restored["s2_semantic"] == {f.role: f.sha256 for f in lib.base("tiny").files}["s2_semantic"]
        lib.validate_for_finetune("T")


def test_killed_after_an_epoch_resumes_to_the_same_weights(chain, tmp_path, monkeypatch, speaker_clips):
    """Stopped at the end of s2's first epoch, ``--resume`` gives what an uninterrupted run gives."""
    from tts_host.host import get_host
    from tts_host.speakers import Library

    config = fast_config(tmp_path, s2_epochs=2, s1_epochs=1)  # stopped after s2's first epoch: one more of each
    results = {}
    for mode in ("straight", "resumed"):
        home = tmp_path / mode
        shutil.copytree(chain["home"], home)
        monkeypatch.setenv("TTS_HOST_HOME", str(home))
        args = ["finetune", "--backend", "sovits", "--speaker", "D", "--data", str(speaker_clips("D", 8)[0][0].parent),
                "--from", "A", "--config", str(config), "--quiet"]
        if mode == "resumed":
            import tts_host.plugins.sovits.loop as loop

            original = loop._save
            calls = []

            def save_then_stop(*a, **k):
                original(*a, **k)
                calls.append(1)
                if len(calls) == 1:
                    raise KeyboardInterrupt

            monkeypatch.setattr(loop, "_save", save_then_stop)
            code, _, err = run_cli_here(*args)
            assert code == 1 and "--resume" in error_line(err)
            monkeypatch.setattr(loop, "_save", original)
            args.append("--resume")
        _ok(*args)
        with Library(home, host=get_host()) as lib:
            results[mode] = {f.role: f.sha256 for f in lib.model_of(lib.voice("D")).files}
    assert results["resumed"] == results["straight"]


def test_the_gan_stage_trains_with_a_fresh_discriminator_when_the_base_has_none(chain, tmp_path, monkeypatch,
                                                                               speaker_clips):
    home = tmp_path / "home"
    shutil.copytree(chain["home"], home)
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    config = fast_config(tmp_path, s2_gan=True, s2_epochs=1, s1_epochs=1, segment_frames=8)
    out = _ok("finetune", "--backend", "sovits", "--speaker", "G", "--data", str(speaker_clips("D", 8)[0][0].parent),
              "--base", "tiny", "--config", str(config), "--quiet")
    shown = json.loads(_ok("voices", "show", "G", "--json"))
    s2 = shown["training"]["stages"]["s2"]
    assert "s2: training loss" in out and s2["steps"] > 0
    assert all(np.isfinite(s2["losses"])) and min(s2["losses"]) > 45 * 0.01  # mel x 45 plus GAN terms


def test_a_sequential_fine_tune_judges_the_earlier_voice_by_ear_before_storing(chain, tmp_path, monkeypatch,
                                                                              speaker_clips):
    home = tmp_path / "home"
    shutil.copytree(chain["home"], home)
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    config = fast_config(tmp_path, s2_epochs=1, s1_epochs=1)
    data = str(speaker_clips("D", 8)[0][0].parent)
    code, _, err = run_cli_here("finetune", "--backend", "sovits", "--speaker", "E", "--data", data, "--from", "A",
                                "--max-forgetting", "3")
    assert code == 1 and "--max-forgetting is a drop in speaker similarity" in error_line(err)

    out = _ok("finetune", "--backend", "sovits", "--speaker", "E", "--data", data, "--from", "A", "--config",
              str(config), "--quiet", "--max-forgetting", "2")  # the largest drop there is: never refused
    judged = json.loads(_ok("voices", "show", "E", "--json"))["training"]["similarity"]
    assert set(judged) == {"A"}  # the one earlier voice of A's checkpoint
    figures = judged["A"]
    assert figures["drop"] == pytest.approx(figures["before"] - figures["after"])
    assert f"earlier voice A: similarity to its recordings {figures['before']:.3f} -> {figures['after']:.3f}" in out
    score = json.loads(_ok("eval", "A", "--json"))["scores"][0]  # "before" is A's own speech, as eval scores it
    assert score["similarity"] == pytest.approx(figures["before"], abs=1e-6)
    assert not list((home / "work" / "sovits").glob("judged-model*"))  # the judged model folder is cleaned up


def test_a_drop_beyond_max_forgetting_is_refused_in_one_line_naming_the_voice():
    from tts_host.errors import TTSHostError
    from tts_host.training.sound_check import check_drops, similarity_warnings

    judged = {"A": {"before": 0.82, "after": 0.71, "drop": 0.11}, "B": {"before": 0.8, "after": 0.79, "drop": 0.01}}
    check_drops(judged, None)  # only --eval-earlier: measured, never refused
    check_drops(judged, 0.2)
    with pytest.raises(TTSHostError) as refused:
        check_drops(judged, 0.05)
    message = str(refused.value)
    assert "\n" not in message and "earlier voice 'A'" in message and "0.820 -> 0.710" in message
    assert "--max-forgetting 0.05" in message and "nothing was stored" in message
    assert [w.split(":")[0] for w in similarity_warnings(judged)] == ["earlier voice 'A'"]
