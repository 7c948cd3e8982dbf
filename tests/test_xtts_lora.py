"""XTTS LoRA voices: A -> B -> C as adapters on one frozen base, speech, refusals, coqui export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import cli_ok, cli_refused, run_cli_here

CLIPS = 5
LORA_ARGS = ["--epochs", "3", "--batch-size", "2", "--lr", "3e-3", "--quiet", "--lora", "4"]


def speaker_folder(speaker_clips, speaker: str, target: Path) -> Path:
    """A private folder with this speaker's first clips and transcripts."""
    target.mkdir(parents=True)
    for wav, _ in speaker_clips(speaker, CLIPS):
        shutil.copy(wav, target / wav.name)
        shutil.copy(wav.with_suffix(".txt"), target / wav.with_suffix(".txt").name)
    return target


def speak(name: str, out: Path) -> np.ndarray:
    """``speak`` with a fixed seed; returns the audio."""
    cli_ok("speak", "A short test sentence.", "--voice", name, "--output", str(out), "--seed", "3")
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 24000 and len(audio) > 0 and np.isfinite(audio).all()
    return audio


def shown(name: str) -> dict:
    return json.loads(cli_ok("voices", "show", name, "--json"))


@pytest.fixture(scope="module")
def lora_chain(tmp_path_factory, speaker_clips):
    """A, then B from A, then C from B: LoRA rank 4 on one tiny base; A spoken before B and C were trained."""
    root = tmp_path_factory.mktemp("xtts-lora")
    data = {s: speaker_folder(speaker_clips, s, root / "data" / s) for s in "ABC"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_HOST_HOME", str(root / "home"))
        cli_ok("base", "init", "xtts", "--preset", "tiny", "--name", "tiny")
        cli_ok("finetune", "--backend", "xtts", "--speaker", "A", "--data", str(data["A"]), *LORA_ARGS)
        before = speak("A", root / "A-before.wav")
        cli_ok("finetune", "--backend", "xtts", "--speaker", "B", "--data", str(data["B"]), "--from", "A",
               *LORA_ARGS)
        cli_ok("finetune", "--backend", "xtts", "--speaker", "C", "--data", str(data["C"]), "--from", "B",
               *LORA_ARGS)
        yield {"root": root, "data": data, "A_before": before}


@pytest.fixture(autouse=True)
def chain_home(lora_chain, monkeypatch):
    """Every test here works on the chain's library."""
    monkeypatch.setenv("TTS_HOST_HOME", str(lora_chain["root"] / "home"))


def test_each_voice_stores_an_adapter_on_the_base_s_own_blobs(lora_chain):
    from tts_host.speakers import Library

    adapters = set()
    with Library() as library:
        base = {f.role: f.sha256 for f in library.bases("xtts")[0].files}
        for name in "ABC":
            model = {f.role: f for f in library.model_of(library.voice(name)).files}
            assert set(model) == set(base) | {"lora_config", "lora_weights"}  # no GPT copy, no speakers file
            assert {role: model[role].sha256 for role in base} == base
            adapters.add(model["lora_weights"].sha256)
            stored = shown(name)["stored"]
            assert stored["files"]["lora_weights"] == model["lora_weights"].size
            assert 0 < stored["bytes"] < 1_000_000  # adapter + conditioning + references: not the base
            assert shown(name)["lineage"][-1]["metrics"]["backend"]["lora_rank"] == 4
    assert len(adapters) == 3  # B continued A's adapter into its own; C B's


def test_a_speaks_bit_identically_after_b_and_c_were_trained(lora_chain):
    after = speak("A", lora_chain["root"] / "A-after.wav")
    assert np.array_equal(after, lora_chain["A_before"])
    other = speak("C", lora_chain["root"] / "C.wav")
    assert not np.array_equal(other[: len(after)], after[: len(other)])


def test_a_full_fine_tune_on_a_lora_voice_is_refused(lora_chain):
    line = cli_refused("finetune", "--backend", "xtts", "--speaker", "D", "--data", str(lora_chain["data"]["A"]),
                       "--from", "C", "--epochs", "1", "--quiet")
    assert "is a LoRA voice's model: continue it with --lora RANK" in line


def test_continuing_with_another_rank_is_refused(lora_chain):
    line = cli_refused("finetune", "--backend", "xtts", "--speaker", "D", "--data", str(lora_chain["data"]["A"]),
                       "--from", "C", "--epochs", "1", "--quiet", "--lora", "8")
    assert "rank 4; continue it with --lora 4" in line


def test_a_changed_adapter_is_caught_by_verify(lora_chain, tmp_path):
    from tts_host.speakers import Library

    with Library() as library:
        voice = library.voice("B")
        entry = next(f for f in library.files_of(voice) if f.role == "lora_weights")
        blob = library.blob_path(entry.sha256)
    saved = blob.read_bytes()
    try:
        blob.chmod(0o644)
        data = bytearray(saved)
        data[-3] ^= 0xFF
        blob.write_bytes(bytes(data))
        code, out, err = run_cli_here("voices", "verify", "B")
        assert code == 1 and "damaged or changed file(s) in voice 'B'" in err
        assert "lora/adapter_model.safetensors" in out + err
    finally:
        blob.write_bytes(saved)
        blob.chmod(0o444)


def test_the_coqui_export_merges_the_adapter_and_loads_strictly(lora_chain, tmp_path):
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    out = tmp_path / "export"
    cli_ok("voices", "export", "B", "--format", "coqui", "--output", str(out))
    config = XttsConfig()
    config.load_json(str(out / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(out), eval=True, strict=True)
    assert "B" in model.speaker_manager.speaker_names
    torch.manual_seed(0)
    wav = model.synthesize("Hello from the export.", speaker="B", language="en", max_new_tokens=40)["wav"]
    assert len(wav) > 0 and np.isfinite(wav).all()
    # the merged GPT is not the base's: the adapter's change is in the exported weights
    exported = torch.load(out / "model.pth", weights_only=True)["model"]
    key = next(k for k in exported if k.endswith("h.0.attn.c_attn.weight"))
    from tts_host.speakers import Library

    with Library() as library:
        base = library.bases("xtts")[0]
        entry = next(f for f in base.files if f.role == "model")
        original = torch.load(library.blob_path(entry.sha256), weights_only=True)
    original = original.get("model", original)
    base_key = next(k for k in original if k.endswith("h.0.attn.c_attn.weight"))
    assert not torch.equal(exported[key], original[base_key])


def test_the_adapter_trains(lora_chain):
    heldout = shown("A")["training"]["heldout"]["A"]
    assert heldout["after"] < 0.95 * heldout["before"]


def test_the_server_keeps_one_base_for_every_lora_voice_and_switches_exactly(lora_chain):
    import threading

    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.serve.service import SpeechService

    service = SpeechService(lora_chain["root"] / "home", get_host(), workers=1, queue=4, models=2)
    try:
        def say(name: str) -> np.ndarray:
            request = SpeakRequest(voice=name, text="A short test sentence.", out=Path("unused.wav"), seed=3)
            return service.submit(request, threading.Event()).result().audio

        first_a, b, c, again_a = say("A"), say("B"), say("C"), say("A")
        assert len(service.models) == 1  # one base loaded for the three voices
        assert np.array_equal(first_a, again_a)  # switching adapters back and forth changes nothing
        for other in (b, c):
            n = min(len(other), len(first_a))
            assert not np.array_equal(other[:n], first_a[:n])
    finally:
        service.close()
