"""int8 speech: dynamic int8 copies of the XTTS GPT and the Llasa LM, per call (``speak --precision int8``) and
per voice (``voices set NAME --precision``); backends that cannot speak int8 refuse it in one line. Also the
bf16 copy of the XTTS GPT that bf16 speech samples from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import cli_ok, cli_refused
from library_fixtures import clone, open_library
from llasa_fixtures import tiny_base_path as llasa_tiny
from sovits_fixtures import tiny_base_path as sovits_tiny
from tts_host.contract import SpeakRequest
from tts_host.errors import TTSHostError
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)

TEXT = "Hello there."


@pytest.fixture(scope="module")
def home(tmp_path_factory, speaker_clips, tiny_base_dir):  # noqa: F811  (the fixture imported above)
    """A library with tiny XTTS voices ``x`` and ``y``, a tiny Llasa voice ``l`` (all cloned) and a SoVITS voice
    ``s`` (its conditioning a stand-in: it is only refused here, before any model loads)."""
    home = tmp_path_factory.mktemp("int8") / "home"
    clip = speaker_clips("A", 1)[0][0]  # its .txt transcript lies beside it (Llasa cloning reads it)
    with open_library(home) as library:
        xtts = library.add_base("xtts", tiny_base_dir, "xtts-tiny")
        clone(library, "x", "xtts", xtts, [clip], language="en")
        clone(library, "y", "xtts", xtts, [clip], language="en")
        clone(library, "l", "llasa", library.add_base("llasa", llasa_tiny(tmp_path_factory), "llasa-tiny"), [clip])
        sovits = library.add_base("sovits", sovits_tiny(tmp_path_factory), "sovits-tiny")
        library.add_voice("s", "sovits", sovits, conditioning={"stand_in": np.zeros(4, np.float32)}, language="en")
    return home


def _speak(path, voice: str, *options: str) -> tuple[np.ndarray, int]:
    cli_ok("speak", "--voice", voice, TEXT, "-o", str(path), "--seed", "5", *options)
    audio, rate = sf.read(path, dtype="float32")
    return audio, rate


@pytest.mark.parametrize("voice, rate, stream", [("x", 24000, False), ("x", 24000, True), ("l", 16000, False)])
def test_speak_in_int8_with_xtts_and_llasa(home, monkeypatch, tmp_path, voice, rate, stream):
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    audio, got = _speak(tmp_path / "int8.wav", voice, "--precision", "int8", *(["--stream"] * stream))
    assert got == rate and audio.size > 0 and np.isfinite(audio).all() and np.abs(audio).max() > 0


def _latents(gpt, tokens, codes, latent, stride: int):
    """The GPT's latents for fixed text tokens and audio codes (no sampling)."""
    import torch

    with torch.inference_mode():
        return gpt(tokens, torch.tensor([tokens.shape[-1]]), codes, torch.tensor([codes.shape[-1] * stride]),
                   cond_latents=latent, return_attentions=False, return_latent=True)


def _fixed_inputs(acoustic):
    import torch

    generator = torch.Generator().manual_seed(0)
    dim = acoustic.config["model_args"]["gpt_n_model_channels"]
    tokens = torch.randint(5, 60, (1, 24), generator=generator, dtype=torch.int32)
    codes = torch.randint(0, 64, (1, 40), generator=generator)
    latent = torch.randn(1, 32, dim, generator=generator)
    return tokens, codes, latent


def test_the_int8_xtts_gpt_is_quantised_close_and_leaves_the_gpt_as_it_was(tiny_base_dir):  # noqa: F811
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from tts_host.plugins.xtts.acoustic import GptAcousticModel
    from tts_host.quantisation import int8_layers

    acoustic = GptAcousticModel(tiny_base_dir)
    conditioning = {"gpt_cond_latent": _fixed_inputs(acoustic)[2].numpy()}
    text = np.arange(5, 25)
    torch.manual_seed(1)
    fp32_first = acoustic.generate(text, conditioning, max_new_tokens=30)
    before = {name: tensor.clone() for name, tensor in acoustic.gpt.state_dict().items()}

    int8 = acoustic.inference_gpt("int8")
    assert acoustic.inference_gpt("int8") is int8  # made once
    assert int8_layers(acoustic.gpt) == {"quantised": 0, "linear": 12, "conv1d": 8}
    assert int8_layers(int8) == {"quantised": 20, "linear": 0, "conv1d": 0}
    # sampling (gpt_inference) and streaming go through the copy's own int8 layers
    assert int8.gpt_inference.transformer is int8.gpt and isinstance(int8.gpt_inference.lm_head[1], DynamicLinear)
    assert isinstance(int8.gpt.h[0].attn.c_attn, DynamicLinear) and int8.gpt.wte is int8.mel_embedding
    torch.manual_seed(1)
    spoken = acoustic.generate(text, conditioning, max_new_tokens=30, precision="int8")
    assert spoken["latents"].shape[1] == spoken["codes"].shape[0] > 0 and np.isfinite(spoken["latents"]).all()
    streamed = list(acoustic.stream(text, conditioning, max_new_tokens=30, precision="int8"))
    assert streamed and all(np.isfinite(piece).all() for piece in streamed)

    tokens, codes, latent = _fixed_inputs(acoustic)
    exact = _latents(acoustic.gpt, tokens, codes, latent, acoustic.code_stride_len)
    quantised = _latents(int8, tokens, codes, latent, acoustic.code_stride_len)
    largest = float((exact - quantised).abs().max())
    scale = float(exact.abs().max())
    print(f"int8 vs fp32 GPT latents (tiny XTTS): max abs difference {largest:.4g} (fp32 max abs {scale:.4g})")
    assert 0 < largest < 0.05 * scale

    torch.manual_seed(1)
    fp32_again = acoustic.generate(text, conditioning, max_new_tokens=30)
    for key in ("codes", "latents"):  # fp32 speech after an int8 call: bit-identical
        assert np.array_equal(fp32_first[key], fp32_again[key])
    after = acoustic.gpt.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_bf16_speech_samples_from_a_bf16_copy_that_computes_what_autocast_computes(tiny_base_dir):  # noqa: F811
    """bf16 speech's GPT holds its matrix layers in bf16 (not rounded again at every token): the same codes and
    latents as bf16 autocast over the fp32 GPT, the GPT unchanged; an int8 call adds its own copy beside it."""
    import torch

    from tts_host.plugins.xtts.acoustic import GptAcousticModel

    acoustic = GptAcousticModel(tiny_base_dir)
    conditioning = {"gpt_cond_latent": _fixed_inputs(acoustic)[2].numpy()}
    text = np.arange(5, 25)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(1)
        over_fp32 = acoustic.generate(text, conditioning, max_new_tokens=30)
    before = {name: tensor.clone() for name, tensor in acoustic.gpt.state_dict().items()}
    torch.manual_seed(1)
    spoken = acoustic.generate(text, conditioning, max_new_tokens=30, precision="bf16")  # opens its own autocast
    copy = acoustic.inference_gpt("bf16")
    assert acoustic.speech_copies == {"bf16"} and acoustic.inference_gpt("bf16") is copy  # made once
    assert copy.gpt.h[0].attn.c_attn.weight.dtype == copy.mel_head.weight.dtype == torch.bfloat16
    # sampling (gpt_inference) goes through the copy's own bf16 layers
    assert copy.gpt_inference.transformer is copy.gpt and copy.gpt_inference.lm_head[1].weight.dtype == torch.bfloat16
    assert acoustic.gpt.gpt.h[0].attn.c_attn.weight.dtype == torch.float32
    assert copy.mel_embedding.weight is acoustic.gpt.mel_embedding.weight  # what it only reads is shared
    assert spoken["codes"].size > 0
    for key in ("codes", "latents"):
        assert np.array_equal(over_fp32[key], spoken[key])
    after = acoustic.gpt.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(TTSHostError, match="bf16 streaming samples under bf16 autocast"):
        next(acoustic.stream(text, conditioning, max_new_tokens=30, precision="bf16"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        streamed = list(acoustic.stream(text, conditioning, max_new_tokens=30, precision="bf16"))
    assert streamed and all(np.isfinite(piece).all() for piece in streamed)
    int8 = acoustic.inference_gpt("int8")  # speech in both precisions keeps both copies: neither is rebuilt
    assert acoustic.speech_copies == {"bf16", "int8"} and acoustic.inference_gpt("bf16") is copy
    assert acoustic.inference_gpt("int8") is int8


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_speech_copy_merges_the_active_lora_adapter(tiny_base_dir, precision):  # noqa: F811
    import torch

    from tts_host import lora
    from tts_host.plugins.xtts.acoustic import GptAcousticModel
    from tts_host.plugins.xtts.lora import lora_config
    from tts_host.quantisation import bf16_copy, int8_copy, int8_layers

    acoustic = GptAcousticModel(tiny_base_dir)
    gpt = acoustic.gpt.eval()
    lora.add_adapter(gpt, lora_config(4, None, 0.0, ["attention", "mlp"]), "a", trainable=False)
    with torch.no_grad():
        for name, tensor in gpt.named_parameters():
            if "lora_B" in name:
                tensor.normal_(0, 0.3, generator=torch.Generator().manual_seed(2))
    inputs = (*_fixed_inputs(acoustic), acoustic.code_stride_len)
    adapted = _latents(gpt, *inputs)
    lora.activate(gpt, None)
    plain = _latents(gpt, *inputs)
    lora.activate(gpt, "a")

    copy = (int8_copy if precision == "int8" else bf16_copy)(gpt)
    assert lora.loaded_adapters(copy) == set()
    assert int8_layers(copy)["quantised"] > 0 if precision == "int8" else copy.gpt.h[0].attn.c_attn.weight.dtype == torch.bfloat16
    assert lora.loaded_adapters(gpt) == {"a"} and torch.equal(_latents(gpt, *inputs), adapted)  # untouched
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        through = _latents(copy, *inputs).float()
    assert float((through - adapted).abs().max()) < 0.2 * float((adapted - plain).abs().max())


def test_the_int8_llasa_lm_is_quantised_and_the_lm_stays(tmp_path_factory):
    import torch

    from tts_host.plugins.llasa.components import LlasaLanguageModel
    from tts_host.quantisation import int8_layers

    lm = LlasaLanguageModel(llasa_tiny(tmp_path_factory))
    before = {name: tensor.clone() for name, tensor in lm.model.state_dict().items()}
    int8 = lm.speech_model("int8")
    assert lm.speech_model("int8") is int8 and lm.speech_model("fp32") is lm.model
    assert int8_layers(int8) == {"quantised": 15, "linear": 0, "conv1d": 0}
    assert int8_layers(lm.model) == {"quantised": 0, "linear": 15, "conv1d": 0}
    ids = torch.arange(10, 60).reshape(1, -1)
    with torch.inference_mode():
        exact, quantised = lm.model(ids).logits, int8(ids).logits
    assert 0 < float((exact - quantised).abs().max()) < 0.05 * float(exact.abs().max())
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())


def test_a_backend_refuses_a_precision_it_does_not_speak_in_one_line(home, monkeypatch, tmp_path):
    from tts_host.host import get_host
    from tts_host.synthesis import check_speak_request

    sovits = get_host().build_backend("sovits")
    with pytest.raises(TTSHostError, match=r"^backend 'sovits' cannot speak in int8 \(it speaks in: fp32\)$"):
        check_speak_request(sovits, SpeakRequest("s", TEXT, tmp_path / "x.wav", precision="int8"))
    check_speak_request(sovits, SpeakRequest("s", TEXT, tmp_path / "x.wav"))  # None: resolved later
    with pytest.raises(TTSHostError, match=r"^--precision must be one of fp32, bf16, int8, got 'fp16'$"):
        SpeakRequest("s", TEXT, tmp_path / "x.wav", precision="fp16")

    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    out = tmp_path / "never.wav"
    assert cli_refused("speak", "--voice", "s", TEXT, "-o", str(out), "--precision", "int8") == (
        "error: backend 'sovits' cannot speak in int8 (it speaks in: fp32)")
    assert cli_refused("speak", "--voice", "l", TEXT, "-o", str(out), "--precision", "bf16") == (
        "error: backend 'llasa' cannot speak in bf16 (it speaks in: fp32, int8)")
    assert cli_refused("speak", "--voice", "x", TEXT, "-o", str(out), "--precision", "int4") == (
        "error: --precision must be one of fp32, bf16, int8, got 'int4'")
    assert not out.exists()


def test_a_voice_speaks_in_its_own_precision_unless_a_request_names_one(home, monkeypatch, tmp_path):
    from tts_host.host import get_host
    from tts_host.serve.service import SpeechService

    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    assert json.loads(cli_ok("voices", "show", "y", "--json"))["speech"] is None
    assert "speaks in int8" in cli_ok("voices", "set", "y", "--precision", "int8")
    assert json.loads(cli_ok("voices", "show", "y", "--json"))["speech"] == {"precision": "int8"}
    assert "voice/speech.json" in {f["path"] for f in json.loads(cli_ok("voices", "show", "y", "--json"))["files"]}

    default, _ = _speak(tmp_path / "default.wav", "y")
    int8, _ = _speak(tmp_path / "int8.wav", "y", "--precision", "int8")
    fp32, _ = _speak(tmp_path / "fp32.wav", "y", "--precision", "fp32")
    assert np.array_equal(default, int8) and not np.array_equal(default, fp32)

    service = SpeechService(home, get_host(), workers=1)
    try:  # the server, too, speaks in the voice's precision: through the int8 copy it makes
        import threading

        speech = service.submit(SpeakRequest("y", TEXT, tmp_path / "unused.wav", seed=5), threading.Event()).result()
        [loaded] = service.models._models.values()
        assert speech.audio.size > 0 and "int8" in loaded.components["acoustic_model"].speech_copies
    finally:
        service.close()

    assert cli_refused("voices", "set", "y", "--precision", "fp8") == (
        "error: --precision must be one of fp32, bf16, int8, got 'fp8'")
    assert cli_refused("voices", "set", "s", "--precision", "int8") == (
        "error: backend 'sovits' cannot speak in int8 (it speaks in: fp32)")
    assert cli_refused("voices", "set", "l", "--precision", "bf16") == (
        "error: backend 'llasa' cannot speak in bf16 (it speaks in: fp32, int8)")
    assert "no voice named 'nobody'" in cli_refused("voices", "set", "nobody", "--precision", "int8")
    assert json.loads(cli_ok("voices", "show", "y", "--json"))["speech"] == {"precision": "int8"}  # unchanged

    cli_ok("voices", "set", "y", "--precision", "fp32")
    again, _ = _speak(tmp_path / "again.wav", "y")
    assert np.array_equal(again, fp32)
    files = json.loads(cli_ok("voices", "show", "y", "--json"))["files"]
    assert [f["path"] for f in files].count("voice/speech.json") == 1
