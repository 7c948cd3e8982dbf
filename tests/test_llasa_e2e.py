"""End to end through the voice library: A, then B from A (full), C then D from C (LoRA), speak,
clone zero-shot, export to a plain Hugging Face folder driven by the published Llasa recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_fixtures import prepared_speaker, tiny_base_path
from tts_host.contract import CloneRequest, FinetuneRequest, SpeakRequest
from tts_host.errors import TTSHostError

SETTINGS = dict(epochs=3, batch_size=2, learning_rate=2e-3, progress=False)


def request(speaker: str, data: Path, **options) -> FinetuneRequest:
    """A fine-tune request with the test's settings (``options`` override them)."""
    return FinetuneRequest(speaker, data, **{**SETTINGS, **options})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, speaker_clips):
    """A library with the tiny base and four fine-tuned voices (A, B from A; C, D from C with LoRA)."""
    import os

    from tts_host.host import get_host
    from tts_host.speakers.library import Library

    home = tmp_path_factory.mktemp("llasa-home")
    previous = os.environ.get("TTS_HOST_HOME")
    os.environ["TTS_HOST_HOME"] = str(home)
    data = {name: prepared_speaker(tmp_path_factory, speaker_clips, name).root for name in "ABCD"}
    library = Library(home, host=get_host())
    base = library.add_base("llasa", tiny_base_path(tmp_path_factory), "llasa-tiny")
    backend = library.backend("llasa")
    outcomes = {
        "A": backend.finetune(library, request("A", data["A"])),
        "B": backend.finetune(library, request("B", data["B"], start="A", replay=0.3)),
        "C": backend.finetune(library, request("C", data["C"], lora_rank=4, learning_rate=1e-2)),
        "D": backend.finetune(library, request("D", data["D"], start="C", lora_rank=4, learning_rate=1e-2)),
    }
    yield library, base, backend, outcomes, data
    library.close()
    if previous is None:
        os.environ.pop("TTS_HOST_HOME", None)
    else:
        os.environ["TTS_HOST_HOME"] = previous


def _files(record) -> dict[str, str]:
    return {f.role: f.sha256 for f in record.files}


def test_each_fine_tune_lowers_the_loss_and_records_lineage(trained):
    library, base, _, outcomes, _ = trained
    for name, outcome in outcomes.items():
        losses, epoch = outcome.metrics["losses"], outcome.metrics["steps"] // 3
        assert sum(losses[-epoch:]) < sum(losses[:epoch]), name  # last epoch below the first
        assert outcome.metrics["heldout"][name]["after"] < outcome.metrics["heldout"][name]["before"], name
        assert library.voice(name).checkpoint_id == outcome.checkpoint.id
    assert list(outcomes["B"].checkpoint.speakers) == ["A", "B"]
    assert outcomes["B"].checkpoint.parent_id == outcomes["A"].checkpoint.id
    # B from A measured A's held-out loss before and after.
    assert set(outcomes["B"].metrics["heldout"]) == {"A", "B"}
    assert set(outcomes["B"].metrics["forgetting"]) == {"A"}
    assert outcomes["B"].metrics["backend"]["replayed_rows"] > 0


def test_protected_files_stay_the_base_blobs_and_lora_voices_share_the_lm(trained):
    _, base, _, outcomes, _ = trained
    base_files = _files(base)
    for outcome in outcomes.values():
        files = _files(outcome.checkpoint)
        for role in ("tokenizer", "tokenizer_config", "codec_config", "codec_weights"):
            assert files[role] == base_files[role]
    full_a, full_b = _files(outcomes["A"].checkpoint), _files(outcomes["B"].checkpoint)
    assert full_a["lm_weights"] != base_files["lm_weights"] and "adapter_weights" not in full_a
    assert full_b["lm_weights"] != full_a["lm_weights"]
    lora_c, lora_d = outcomes["C"].checkpoint, outcomes["D"].checkpoint
    assert _files(lora_c)["lm_weights"] == _files(lora_d)["lm_weights"] == base_files["lm_weights"]
    adapter = next(f for f in lora_d.files if f.role == "adapter_weights")
    lm = next(f for f in lora_d.files if f.role == "lm_weights")
    assert adapter.size < lm.size / 2 and _files(lora_c)["adapter_weights"] != adapter.sha256


def test_every_voice_speaks_non_silent_16khz_audio(trained, tmp_path: Path):
    library, _, backend, _, _ = trained
    for name in "ABCD":
        out = tmp_path / f"{name}.wav"
        result = backend.speak(library, SpeakRequest(name, "The quick brown fox.", out, seed=1,
                                                     sampling={"max_length": 400}))
        audio, rate = sf.read(out)
        assert rate == 16000 and result.sample_rate == 16000
        assert len(audio) >= 320 and np.abs(audio).max() > 1e-3, name


def test_sequential_start_is_validated_through_the_library(trained):
    library, _, backend, outcomes, data = trained
    with pytest.raises(TTSHostError, match="LoRA rank must be a positive integer"):
        backend.finetune(library, request("E", data["A"], start="A", lora_rank=0))
    with pytest.raises(TTSHostError, match="is a LoRA voice.s model: continue it with --lora"):
        backend.finetune(library, request("E", data["A"], start="C"))
    with pytest.raises(TTSHostError, match="a voice named 'B' already exists"):
        backend.finetune(library, request("B", data["B"], start="A"))


def test_zero_shot_clone_speaks_after_the_reference(trained, speaker_clips, tmp_path: Path):
    library, base, backend, _, _ = trained
    wav, text = speaker_clips("B", 1)[0]
    voice = backend.clone(library, base, CloneRequest("cloned-b", [wav], ref_text=text))
    conditioning = library.voice_conditioning(voice)
    assert conditioning["ref_codes"].dtype == np.int64 and len(conditioning["ref_codes"]) > 50
    assert bytes(conditioning["ref_text"]).decode() == text
    out = tmp_path / "clone.wav"
    backend.speak(library, SpeakRequest("cloned-b", "Hello there.", out, sampling={"max_length": 600}))
    audio, rate = sf.read(out)
    assert rate == 16000 and len(audio) > 0 and np.abs(audio).max() > 1e-3
    export = tmp_path / "cloned-hf"
    with library.materialised(base) as folder:
        library.backend("llasa").export(voice, folder, conditioning, "hf", export)
    description = json.loads((export / "voice.json").read_text())
    assert description["mode"] == "reference" and description["ref_text"] == text
    assert description["assistant_prefix"].startswith("<|SPEECH_GENERATION_START|><|s_")
    assert description["assistant_prefix"].count("<|s_") == len(conditioning["ref_codes"])


def test_clone_without_a_transcript_is_refused(trained, tmp_path: Path):
    library, base, _, _, _ = trained
    clip = tmp_path / "ref.wav"
    sf.write(clip, np.sin(np.linspace(0, 800, 16000)).astype(np.float32) * 0.3, 16000)
    with pytest.raises(TTSHostError, match=r"needs the transcript of .*ref.wav: pass --ref-text"):
        library.backend("llasa").clone(library, base, CloneRequest("no-text", [clip]))


def test_hf_export_of_a_lora_voice_runs_the_published_recipe(trained, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Xcodec2Model

    library, _, backend, _, _ = trained
    voice = library.voice("D")
    out = tmp_path / "export"
    probe = torch.arange(20).view(1, -1)
    with library.materialised(library.model_of(voice)) as folder:
        backend.export(voice, folder, library.voice_conditioning(voice), "hf", out)
        from tts_host.plugins.llasa.lora import load_lm

        with torch.no_grad():
            adapter_logits = load_lm(folder / "model", folder / "adapter").eval()(probe).logits
    assert not (out / "adapter_config.json").exists()
    description = json.loads((out / "voice.json").read_text())
    assert description["mode"] == "speaker_tag" and description["speaker_tag"] == "D"

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():  # the merged export computes what base + adapter compute
        assert torch.allclose(model(probe).logits, adapter_logits, atol=1e-4)
    text = description["text_format"].format(text="Hello there.")
    chat = [{"role": "user", "content": f"Convert the text to speech:<|TEXT_UNDERSTANDING_START|>{text}"
                                        "<|TEXT_UNDERSTANDING_END|>"},
            {"role": "assistant", "content": "<|SPEECH_GENERATION_START|>"}]
    input_ids = tokenizer.apply_chat_template(chat, tokenize=True, return_tensors="pt",
                                              continue_final_message=True)["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|SPEECH_GENERATION_END|>")
    torch.manual_seed(0)
    generated = model.generate(input_ids, max_length=300, eos_token_id=end, do_sample=True, top_p=1,
                               temperature=0.8)[0][input_ids.shape[1]:]
    pieces = tokenizer.batch_decode(generated, skip_special_tokens=True)
    codes = [int(code) for piece in pieces for code in re.findall(r"<\|s_(\d+)\|>", piece)]
    assert len(codes) > 0
    codec = Xcodec2Model.from_pretrained(out / "codec")
    with torch.no_grad():
        audio = codec.decode(audio_codes=torch.tensor(codes).view(1, 1, -1)).audio_values
    assert audio.shape[-1] == len(codes) * 320 and torch.isfinite(audio).all()


def test_hf_export_refuses_a_non_empty_folder(trained, tmp_path: Path):
    library, _, backend, _, _ = trained
    voice = library.voice("A")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with library.materialised(library.model_of(voice)) as folder:
        with pytest.raises(TTSHostError, match="exists and is not empty"):
            backend.export(voice, folder, library.voice_conditioning(voice), "hf", tmp_path / "taken")
