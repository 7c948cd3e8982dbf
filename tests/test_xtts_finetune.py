"""XTTS acceptance: A -> B -> C sequential fine-tunes on espeak-ng speech, speak, coqui export,
DVAE codes computed once per clip, corruption refused and repaired, exact resume."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import error_line, run_cli_here as run_cli
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)

CLIPS = 5
TRAIN_ARGS = ["--epochs", "3", "--batch-size", "2", "--lr", "1e-3", "--quiet"]


def speaker_folder(speaker_clips, speaker: str, target: Path) -> Path:
    """A private folder with this speaker's first clips and transcripts."""
    target.mkdir(parents=True)
    for wav, _ in speaker_clips(speaker, CLIPS):
        shutil.copy(wav, target / wav.name)
        shutil.copy(wav.with_suffix(".txt"), target / wav.with_suffix(".txt").name)
    return target


class CodeCalls:
    """Counts DVAE code computations (wraps the real DiscreteVAE method; the real work still runs)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, patch: pytest.MonkeyPatch) -> None:
        from TTS.tts.layers.xtts.dvae import DiscreteVAE

        original = DiscreteVAE.get_codebook_indices
        counter = self

        def counting(dvae, mels):
            counter.count += mels.shape[0]
            return original(dvae, mels)

        patch.setattr(DiscreteVAE, "get_codebook_indices", counting)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, speaker_clips):
    """A library where A was fine-tuned on a tiny base, then B from A (replay 0.2), then C from B."""
    root = tmp_path_factory.mktemp("xtts-chain")
    home = root / "home"
    data = {s: speaker_folder(speaker_clips, s, root / "data" / s) for s in "ABC"}
    calls, results = CodeCalls(), {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(home))
        calls.install(patch)
        results["init"] = run_cli("base", "init", "xtts", "--preset", "tiny", "--name", "tiny")
        for speaker, start in (("A", []), ("B", ["--from", "A", "--replay", "0.2"]), ("C", ["--from", "B"])):
            before = calls.count
            log = ["--log-dir", str(root / "logs" / speaker)] if speaker == "A" else []
            results[speaker] = run_cli("finetune", "--backend", "xtts", "--speaker", speaker, "--data",
                                       str(data[speaker]), *start, *TRAIN_ARGS, *log)
            results[f"calls_{speaker}"] = calls.count - before
    return {"home": home, "root": root, "data": data, "results": results}


def library(home: Path):
    from tts_host.host import get_host
    from tts_host.speakers.library import Library

    return Library(home, host=get_host())


def test_sequential_finetunes_train_and_keep_every_speaker(chain):
    results = chain["results"]
    assert results["init"][0] == 0, results["init"]
    for speaker in "ABC":
        code, out, err = results[speaker]
        assert code == 0, err
        assert f"voice '{speaker}'" in out and "training loss" in out
    with library(chain["home"]) as lib:
        checkpoints = lib.checkpoints()
        assert [c.speakers for c in checkpoints] == [("A",), ("A", "B"), ("A", "B", "C")]
        assert [c.parent_id for c in checkpoints] == [None, checkpoints[0].id, checkpoints[1].id]
        for checkpoint in checkpoints:
            metrics = checkpoint.metrics
            assert metrics["train_loss_last"] < metrics["train_loss_first"] * 0.8
            new = metrics["heldout"][checkpoint.speakers[-1]]
            assert new["after"] < new["before"]
        # The earlier speakers' held-out loss is measured before and after each sequential step.
        assert set(checkpoints[1].metrics["forgetting"]) == {"A"}
        assert set(checkpoints[2].metrics["forgetting"]) == {"A", "B"}
        for record in checkpoints[2].metrics["forgetting"].values():
            assert record["before"] > 0 and record["after"] > 0
        # Protected files are literally the base's blobs; only the GPT and the speakers file are new.
        base = {f.role: f.sha256 for f in lib.base("tiny").files}
        last = {f.role: f.sha256 for f in checkpoints[2].files}
        for role in ("dvae", "mel_stats", "vocab", "model", "config"):
            assert last[role] == base[role]
        assert "gpt" in last and "speakers" in last
        assert len({c.files for c in checkpoints}) == 3
    png = chain["root"] / "logs" / "A" / "loss.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_voices_show_json_records_forgetting_as_every_backend_does(chain, monkeypatch):
    import json

    from cli_helpers import assert_forgetting_recorded

    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    code, out, err = run_cli("voices", "show", "B", "--json")
    assert code == 0, err
    assert_forgetting_recorded(json.loads(out), new="B", earlier="A")


def test_dvae_codes_are_computed_once_per_clip_across_epochs_and_runs(chain):
    results = chain["results"]
    with library(chain["home"]) as lib:
        clips = lib.checkpoints()[-1].training_config["clips"]
    # Three epochs, replay of A in B's run, A and B held-out checks in C's run: still one code pass per clip.
    for speaker in "ABC":
        assert results[f"calls_{speaker}"] == len(clips[speaker]) > 0


def test_speak_writes_non_silent_24khz_audio_for_every_voice(chain, monkeypatch, tmp_path):
    import soundfile as sf

    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    for speaker in "ABC":
        out = tmp_path / f"{speaker}.wav"
        stream = ["--stream", "--temperature", "0.5", "--top-k", "20"] if speaker == "C" else []
        code, stdout, stderr = run_cli("speak", "--voice", speaker, "Hello there, how are you?", "-o", str(out),
                                       *stream)
        assert code == 0, stderr
        audio, rate = sf.read(out, dtype="float32")
        assert rate == 24000 and audio.ndim == 1 and len(audio) > 2400
        assert np.isfinite(audio).all() and float(np.sqrt(np.mean(audio**2))) > 1e-3
        assert ("time to first audio" in stdout) == bool(stream)


def test_coqui_export_loads_with_coquis_own_loader_and_speaks_every_speaker(chain, monkeypatch, tmp_path):
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    out = tmp_path / "export"
    code, _, stderr = run_cli("voices", "export", "C", "--format", "coqui", "-o", str(out))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir() if p.name != ".tts-host-export") == sorted(
        ["config.json", "model.pth", "dvae.pth", "mel_stats.pth", "vocab.json", "speakers_xtts.pth"])
    speakers = torch.load(out / "speakers_xtts.pth", weights_only=True)
    assert sorted(speakers) == ["A", "B", "C"]
    config = XttsConfig()
    config.load_json(str(out / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(out), eval=True, strict=True)
    assert model.speaker_manager.speaker_names == ["A", "B", "C"]
    with library(chain["home"]) as lib:
        checkpoint = lib.checkpoints()[-1]
        gpt_blob = lib.blob_path(next(f.sha256 for f in checkpoint.files if f.role == "gpt"))
        dvae_blob = lib.blob_path(next(f.sha256 for f in checkpoint.files if f.role == "dvae"))
    from safetensors.torch import load_file

    trained = load_file(str(gpt_blob))
    assert torch.equal(model.gpt.text_embedding.weight, trained["text_embedding.weight"])
    assert (out / "dvae.pth").read_bytes() == dvae_blob.read_bytes()
    torch.manual_seed(0)
    wav = model.synthesize("Hello from the export.", speaker="A", language="en", max_new_tokens=40)["wav"]
    assert len(wav) > 0 and np.isfinite(wav).all()


def _writable_copy(home: Path, target: Path) -> Path:
    shutil.copytree(home, target)
    return target


def _dvae_blob(home: Path) -> Path:
    with library(home) as lib:
        return lib.blob_path(next(f.sha256 for f in lib.base("tiny").files if f.role == "dvae"))


@pytest.mark.parametrize("damage", ["alltalk-prefix", "flipped-byte"])
def test_corrupted_dvae_is_refused_before_training_and_repaired(chain, monkeypatch, tmp_path, damage):
    import torch

    home = _writable_copy(chain["home"], tmp_path / "home")
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    blob = _dvae_blob(home)
    original = tmp_path / "original-base"  # the user's intact copy of the base folder
    original.mkdir()
    shutil.copy(blob, original / "dvae.pth")
    os.chmod(blob, stat.S_IRUSR | stat.S_IWUSR)
    if damage == "alltalk-prefix":
        state = torch.load(blob, weights_only=True)
        torch.save({f"dvae.{k}": v for k, v in state.items()}, blob)
    else:
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))

    code, out, err = run_cli("finetune", "--backend", "xtts", "--speaker", "D", "--data", str(chain["data"]["C"]),
                             "--from", "A", *TRAIN_ARGS)
    assert code == 1 and "dvae.pth" in error_line(err) and "damaged" in error_line(err)
    assert "training loss" not in out
    with library(home) as lib:
        assert len(lib.checkpoints()) == 3 and "D" not in [v.name for v in lib.voices()]

    code, out, err = run_cli("voices", "repair", "A", "--source", str(original))
    assert code == 0, err
    assert blob.read_bytes() == (original / "dvae.pth").read_bytes()
    if damage == "alltalk-prefix":  # after the repair, the fine-tune runs
        code, out, err = run_cli("finetune", "--backend", "xtts", "--speaker", "D", "--data",
                                 str(chain["data"]["C"]), "--from", "A", "--epochs", "1", "--batch-size", "2",
                                 "--lr", "1e-3", "--quiet")
        assert code == 0, err
        assert "speakers: A, D" in out


def test_base_import_refuses_an_alltalk_dvae(tiny_base_dir, tmp_path, monkeypatch):
    import torch

    folder = tmp_path / "published"
    shutil.copytree(tiny_base_dir, folder)
    state = torch.load(folder / "dvae.pth", weights_only=True)
    torch.save({f"dvae.{k}": v for k, v in state.items()}, folder / "dvae.pth")
    code, out, err = run_cli("base", "add", "xtts", str(folder), "--name", "alltalk")
    assert code == 1 and "dvae.pth" in error_line(err) and "prefixed 'dvae.'" in err
    code, out, err = run_cli("base", "add", "xtts", str(tiny_base_dir), "--name", "good")
    assert code == 0, err


def test_resume_after_interruption_reaches_the_same_weights(chain, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    home = tmp_path / "home"
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    assert run_cli("base", "init", "xtts", "--preset", "tiny", "--name", "tiny")[0] == 0

    from tts_host.contract import FinetuneRequest

    def interrupt(step: int, total: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with library(home) as lib:
        backend = lib.backend("xtts")
        request = FinetuneRequest("A", chain["data"]["A"], base="tiny", epochs=3, batch_size=2, learning_rate=1e-3,
                                  progress=False, on_step=interrupt)
        with pytest.raises(KeyboardInterrupt):
            backend.finetune(lib, request)
        assert lib.checkpoints() == []
        code, out, err = run_cli("finetune", "--backend", "xtts", "--speaker", "A", "--data",
                                 str(chain["data"]["A"]), "--base", "tiny", "--resume", *TRAIN_ARGS)
        assert code == 0, err
    with library(home) as lib:
        resumed = lib.checkpoints()[0]
        resumed_gpt = load_file(str(lib.blob_path(next(f.sha256 for f in resumed.files if f.role == "gpt"))))
    assert resumed.training_config["resumed_from"] == 3
    with library(chain["home"]) as lib:
        straight = lib.checkpoints()[0]
        straight_gpt = load_file(str(lib.blob_path(next(f.sha256 for f in straight.files if f.role == "gpt"))))
    assert resumed.metrics["train_loss_last"] == pytest.approx(straight.metrics["train_loss_last"], rel=1e-5)
    assert resumed.metrics["steps"] == straight.metrics["steps"]
    for key, value in straight_gpt.items():
        assert torch.allclose(resumed_gpt[key], value, atol=1e-5, rtol=1e-4), key
    assert not list((home / "work" / "xtts").glob("run-*"))  # work files removed once stored


def test_bad_finetune_inputs_are_one_line_errors(tmp_path, monkeypatch, chain):
    monkeypatch.setenv("TTS_HOST_HOME", str(chain["home"]))
    cases = [
        (["--speaker", "E", "--data", str(tmp_path / "missing"), "--from", "A"], "no such file or folder"),
        (["--speaker", "A", "--data", str(chain["data"]["A"]), "--from", "B"], "a voice named 'A' already exists"),
        (["--speaker", "E", "--data", str(chain["data"]["A"]), "--from", "A", "--base", "tiny"], "not both"),
        (["--speaker", "E", "--data", str(chain["data"]["A"]), "--from", "A", "--replay", "1.5"], "--replay is the share"),
        (["--speaker", "E", "--data", str(chain["data"]["A"]), "--from", "A", "--resume"], "no interrupted run"),
    ]
    for args, message in cases:
        code, _, err = run_cli("finetune", "--backend", "xtts", *args, "--quiet")
        assert code == 1 and message in error_line(err), (args, err)
    code, _, err = run_cli("speak", "--voice", "A", "hi", "-o", str(tmp_path / "x.wav"), "--max-length", "9")
    assert code == 1 and "does not take --max-length" in error_line(err) and not (tmp_path / "x.wav").exists()
    code, _, err = run_cli("speak", "--voice", "nobody", "hi", "-o", str(tmp_path / "x.wav"))
    assert code == 1 and "no voice named 'nobody'" in error_line(err) and not (tmp_path / "x.wav").exists()


def test_zero_shot_voice_from_the_base_speaks(chain, tmp_path, monkeypatch, speaker_clips):
    import soundfile as sf

    home = _writable_copy(chain["home"], tmp_path / "home")
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    reference = speaker_clips("D", 2)[1][0]
    code, out, err = run_cli("voices", "add", "dora", "--backend", "xtts", "--ref", str(reference), "--base", "tiny",
                             "--language", "en")
    assert code == 0, err
    with library(home) as lib:
        conditioning = lib.voice_conditioning(lib.voice("dora"))
    assert conditioning["gpt_cond_latent"].shape == (1, 32, 64)
    assert conditioning["speaker_embedding"].shape == (1, 512, 1)
    code, out, err = run_cli("speak", "--voice", "dora", "Good morning.", "-o", str(tmp_path / "dora.wav"))
    assert code == 0, err
    audio, rate = sf.read(tmp_path / "dora.wav")
    assert rate == 24000 and len(audio) > 0


@pytest.mark.slow
def test_cli_finetune_under_torchrun_matches_one_process(chain, tmp_path):
    """``torchrun --nproc_per_node 2`` shards every batch, averages gradients, and only rank 0 writes.

    Dropout is off: its masks are drawn for each process's part of a batch, whose shape differs
    from the whole batch's, so with dropout the runs agree in law, not in every bit.
    """
    import subprocess
    import sys

    from safetensors.torch import load_file

    from tts_host.plugins.xtts.model import load_tensor_file, model_part

    config = tmp_path / "no-dropout.yaml"
    config.write_text("dropout: 0.0\n", encoding="utf-8")
    weights, outputs = {}, {}
    for procs in (1, 2):
        home = tmp_path / f"home-{procs}"
        env = {**os.environ, "TTS_HOST_HOME": str(home), "OMP_NUM_THREADS": "1"}
        init = subprocess.run([sys.executable, "-m", "tts_host.cli.main", "base", "init", "xtts", "--preset", "tiny",
                               "--name", "tiny"], env=env, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stderr
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                   "-m", "tts_host.cli.main", "finetune", "--backend", "xtts", "--speaker", "A", "--data",
                   str(chain["data"]["A"]), "--epochs", "2", "--batch-size", "2", "--lr", "1e-3", "--quiet",
                   "--config", str(config)]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        outputs[procs] = run.stdout
        with library(home) as lib:
            [checkpoint] = lib.checkpoints()  # one library write, by rank 0
            assert [v.name for v in lib.voices()] == ["A"]
            weights[procs] = load_file(str(lib.blob_path(next(f.sha256 for f in checkpoint.files
                                                              if f.role == "gpt"))))
            start = model_part(load_tensor_file(lib.blob_path(next(f.sha256 for f in lib.base("tiny").files
                                                                   if f.role == "model"))), "gpt.")
            losses = checkpoint.metrics["losses"]
            outputs[f"losses-{procs}"] = losses
    assert outputs[2].count("stored checkpoint") == 1  # rank 0 alone reports
    assert outputs["losses-2"] == pytest.approx(outputs["losses-1"], rel=1e-4)
    # Adam divides by the gradients' running size, so where a gradient is near zero the runs' float rounding
    # becomes a whole step. The attention's key biases get no true gradient at all (softmax ignores them), so
    # the fused query-key-value biases are left out; every other tensor's update must agree as a whole.
    for key, value in weights[1].items():
        update = value - start[key]
        if update.norm() > 0 and not key.endswith(("c_attn.bias", "qkv.bias")):
            assert (weights[2][key] - value).norm() < 0.05 * update.norm(), key
