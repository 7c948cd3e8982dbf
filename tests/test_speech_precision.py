"""What each part of speech computes in (``tts_host.speech_precision``), and XTTS speech doing it: fp32 speech
vocodes in fp32, bf16 speech in bf16, int8 speech in bf16 where the CPU computes bf16 natively and in fp32
elsewhere, the GPT's sampling being the same whatever the vocoder computes in."""

from __future__ import annotations

import numpy as np
import pytest

from tts_host.host import get_host
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)

TEXT = "Hello there."


@pytest.mark.parametrize("native", [True, False])
def test_which_precision_speech_decodes_in(monkeypatch, native):
    """Both kinds of CPU, whichever this one is: the capability check is replaced, the autocast is torch's own."""
    import torch

    from tts_host import speech_precision
    from tts_host.training import devices

    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: native)
    assert speech_precision.decodes_in_bf16("int8", "cpu") is native
    assert speech_precision.decodes_in_bf16("bf16", "cpu") and speech_precision.decodes_in_bf16("bf16", "cuda")
    assert not speech_precision.decodes_in_bf16("fp32", "cpu")
    assert not speech_precision.decodes_in_bf16("int8", "cuda")
    with speech_precision.decoding_autocast("int8", "cpu"):
        assert torch.is_autocast_enabled("cpu") is native
        assert not native or torch.get_autocast_dtype("cpu") == torch.bfloat16
    with speech_precision.sampling_autocast("int8", "cpu"):  # int8 samples from its own copy, not under autocast
        assert not torch.is_autocast_enabled("cpu")
    with speech_precision.sampling_autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.fixture(scope="module")
def xtts(tiny_base_dir, speaker_clips):  # noqa: F811  (the fixture imported above)
    """The tiny base's XTTS components and a cloned voice's conditioning."""
    from tts_host.plugins.xtts.synthesis import clone_conditioning

    components = get_host().components_for("xtts", tiny_base_dir)
    return components, clone_conditioning(components, [speaker_clips("A", 1)[0][0]])


def _speak(xtts, tmp_path, precision: str, stream: bool = False):
    """Speech in ``precision``, and for each HiFi-GAN call: whether bf16 autocast was on, and the latents it got."""
    import torch

    from tts_host.contract import SpeakRequest
    from tts_host.plugins.xtts.synthesis import synthesize

    components, conditioning = xtts
    calls: list[tuple[bool, np.ndarray]] = []

    def record(module, args):
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        calls.append((bf16, args[0].detach().numpy().copy()))

    handle = components["vocoder"].decoder.register_forward_pre_hook(record)
    try:
        request = SpeakRequest("v", TEXT, tmp_path / "x.wav", seed=3, precision=precision, stream=stream)
        speech = synthesize(components, conditioning, "en", request)
    finally:
        handle.remove()
    assert calls and speech.sample_rate == 24000 and np.isfinite(speech.audio).all()
    return speech, calls


@pytest.mark.parametrize("precision, stream", [("fp32", False), ("bf16", False), ("bf16", True), ("int8", True)])
def test_xtts_speech_vocodes_in_its_precision(xtts, tmp_path, precision, stream):
    from tts_host.speech_precision import decodes_in_bf16

    _, calls = _speak(xtts, tmp_path, precision, stream)
    assert {bf16 for bf16, _ in calls} == {decodes_in_bf16(precision, "cpu")}


def test_int8_speech_vocodes_in_bf16_only_on_a_cpu_that_computes_it(xtts, tmp_path, monkeypatch):
    """Both kinds of CPU (the capability check replaced): the same int8 latents, vocoded in exactly fp32 on one,
    in bf16 (close to fp32's audio, not equal) on the other."""
    from tts_host.training import devices

    components, conditioning = xtts
    spoken = {}
    for native in (False, True):
        monkeypatch.setattr(devices, "cpu_has_bf16", lambda native=native: native)
        speech, calls = _speak(xtts, tmp_path, "int8")
        assert [bf16 for bf16, _ in calls] == [native]
        spoken[native] = speech.audio, calls[0][1]
    (fp32_vocoded, latents), (bf16_vocoded, same_latents) = spoken[False], spoken[True]
    assert np.array_equal(latents, same_latents)
    fp32 = components["vocoder"].vocode({"latents": latents, "speaker_embedding": conditioning["speaker_embedding"]})
    assert np.array_equal(fp32_vocoded, fp32)
    assert len(bf16_vocoded) == len(fp32)
    assert 0 < float(np.abs(bf16_vocoded - fp32).max()) < 0.05 * float(np.abs(fp32).max())
