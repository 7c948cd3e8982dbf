"""The five XTTS components, built through the plugin host from a tiny base: what speech and training use.

Speech through the components (text encoder -> GPT -> vocoder) and cloning (speaker encoder +
GPT conditioning) give exactly what coqui's own ``Xtts`` gives for the same weights and seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from tts_host.errors import CompositionError, TTSHostError
from tts_host.host import get_host
from xtts_fixtures import copy_base, tiny_base_dir  # noqa: F401  (fixture)


def coqui_xtts(folder):
    """coqui's own ``Xtts`` loaded from a model folder (the reference the components are compared with)."""
    import torch

    from tts_host.plugins.xtts.model import build_xtts, load_tensor_file, model_part, read_config

    model = build_xtts(read_config(folder), folder / "vocab.json")
    checkpoint = load_tensor_file(folder / "model.pth")
    model.gpt.load_state_dict(model_part(checkpoint, "gpt."), strict=True)
    model.hifigan_decoder.load_state_dict(model_part(checkpoint, "hifigan_decoder."), strict=True)
    model.mel_stats = load_tensor_file(folder / "mel_stats.pth").to(torch.float32)
    model.eval()
    return model


def test_xtts_backend_composition_fits():
    host = get_host()
    assert host.composition_problems("xtts") == []
    kinds = {r.kind for r in host.components() if r.plugin == "xtts"}
    assert kinds == {"codec", "text_encoder", "acoustic_model", "vocoder", "speaker_encoder"}


def test_codec_speaker_encoder_and_text_encoder_on_speech(tiny_base_dir, speaker_clips):
    import librosa

    components = get_host().components_for("xtts", tiny_base_dir)
    wav, text = speaker_clips("A", 1)[0]
    audio, _ = librosa.load(wav, sr=22050)
    codec = components["codec"]
    codes = codec.encode(audio)
    assert codes.dtype == np.int64 and abs(len(codes) - len(audio) / 1024) <= 2
    assert codes.min() >= 0 and codes.max() < codec.codebook_size == 64

    vector = components["speaker_encoder"].embed(librosa.resample(audio, orig_sr=22050, target_sr=16000))
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4

    text_encoder = components["text_encoder"]
    ids = text_encoder.encode(text, "en")
    assert len(ids) > len(text) // 2 and 1 not in ids
    with pytest.raises(TTSHostError, match="characters the XTTS vocabulary does not know"):
        text_encoder.encode("日本語", "en")


def test_cloning_and_speech_through_the_components_equal_coquis_xtts(tiny_base_dir, speaker_clips, tmp_path):
    import torch

    from tts_host.contract import SpeakRequest
    from tts_host.data.audio import read_audio
    from tts_host.plugins.xtts.synthesis import clone_conditioning, synthesize

    reference = speaker_clips("A", 1)[0][0]
    components = get_host().components_for("xtts", tiny_base_dir)
    conditioning = clone_conditioning(components, [reference])
    coqui = coqui_xtts(tiny_base_dir)
    audio = torch.from_numpy(read_audio(reference, 22050)).reshape(1, -1)
    with torch.inference_mode():
        latent = coqui.get_gpt_cond_latents(audio, 22050, length=coqui.config.gpt_cond_len,
                                            chunk_length=coqui.config.gpt_cond_chunk_len)
        vector = coqui.get_speaker_embedding(audio, 22050)
    assert conditioning["gpt_cond_latent"].shape == (1, 32, 64)
    assert np.allclose(conditioning["gpt_cond_latent"], latent.numpy(), atol=1e-5)
    assert np.allclose(conditioning["speaker_embedding"], vector.numpy(), atol=1e-5)

    text = "hello there"
    speech = synthesize(components, conditioning, "en", SpeakRequest("v", text, tmp_path / "x.wav", seed=3))
    torch.manual_seed(3)
    config = coqui.config
    expected = coqui.inference(text, "en", torch.from_numpy(conditioning["gpt_cond_latent"]),
                               torch.from_numpy(conditioning["speaker_embedding"]), temperature=config.temperature,
                               top_k=config.top_k, top_p=config.top_p, repetition_penalty=config.repetition_penalty,
                               length_penalty=config.length_penalty,
                               max_new_tokens=_budget(components, text))["wav"]
    assert speech.sample_rate == 24000 and len(speech.audio) == len(expected)
    assert np.allclose(speech.audio, expected, atol=1e-5)


def _budget(components, text: str) -> int:
    from tts_host.speech import audio_token_budget

    acoustic = components["acoustic_model"]
    return audio_token_budget(text, acoustic.codes_per_second, acoustic.max_audio_tokens)


def test_the_vocoder_folds_weight_norm_into_the_weights_it_computes(tiny_base_dir):  # noqa: F811
    """Weight norm is computed once at load, not at every call, and the audio is bit-identical."""
    import torch
    from torch.nn.utils import parametrize

    from tts_host.plugins.xtts.components import load_hifigan

    vocoder = get_host().components_for("xtts", tiny_base_dir)["vocoder"]
    unfolded = load_hifigan(tiny_base_dir)
    assert any(parametrize.is_parametrized(layer) for layer in unfolded.modules())
    assert not any(parametrize.is_parametrized(layer) for layer in vocoder.decoder.modules())
    generator = torch.Generator().manual_seed(0)
    latents, speaker = torch.randn(1, 20, 64, generator=generator), torch.randn(1, 512, 1, generator=generator)
    with torch.inference_mode():
        expected = unfolded(latents, g=speaker).reshape(-1).numpy()
    assert np.array_equal(vocoder.vocode({"latents": latents.numpy(), "speaker_embedding": speaker.numpy()}), expected)


def test_streamed_speech_decodes_windows_close_to_the_whole(tiny_base_dir, speaker_clips):
    from tts_host.plugins.xtts.synthesis import clone_conditioning, latent_position
    from tts_host.streaming import stream_audio

    components = get_host().components_for("xtts", tiny_base_dir)
    conditioning = clone_conditioning(components, [speaker_clips("A", 1)[0][0]])
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((1, 72, 64)).astype(np.float32)
    vocode = lambda part: components["vocoder"].vocode({"latents": part,  # noqa: E731
                                                        "speaker_embedding": conditioning["speaker_embedding"]})
    whole = vocode(latents)
    pieces = list(stream_audio((latents[:, i:i + 12] for i in range(0, 72, 12)), vocode,
                               latent_position(components["acoustic_model"].config)))
    streamed = np.concatenate(pieces)
    assert len(pieces) >= 6 and len(streamed) == len(whole)
    n = min(len(whole), len(streamed))
    # Each window sees 16 latents of context before and 8 after: far from the joins it is the whole decode.
    assert float(np.max(np.abs(streamed[:n] - whole[:n]))) < 0.02 * float(np.max(np.abs(whole)))


def test_an_unknown_or_misfitting_component_choice_is_one_line(tiny_base_dir):
    host = get_host()
    with pytest.raises(CompositionError, match="no vocoder named 'nope' is installed"):
        host.components_for("xtts", tiny_base_dir, {"vocoder": "nope"})
    with pytest.raises(CompositionError, match="has no component role 'mixer'"):
        host.components_for("xtts", tiny_base_dir, {"mixer": "xtts-hifigan"})
    with pytest.raises(CompositionError) as refused:
        host.components_for("xtts", tiny_base_dir, {"vocoder": "xcodec2-decoder"})
    message = str(refused.value)
    assert "\n" not in message and "xcodec2-decoder" in message and "xtts-gpt" in message
    assert "latents" in message and "codec_tokens" in message


def test_training_items_come_from_the_text_encoder_and_the_codec(tiny_base_dir, speaker_clips, tmp_path):
    import random

    import torch

    from tts_host.data.cache import FeatureCache
    from tts_host.data.prepare import prepare_dataset
    from tts_host.plugins.xtts.features import MAX_COND_SAMPLES, Collator, ItemBuilder
    from tts_host.training.clips import dataset_clips

    source = speaker_clips("A", 3)[0][0].parent
    clips = dataset_clips(prepare_dataset(source, tmp_path / "prepared", "A", 22050)).all()[:2]
    components = get_host().components_for("xtts", tiny_base_dir)
    cache = FeatureCache(tmp_path / "cache")
    def builder() -> ItemBuilder:
        return ItemBuilder(components["text_encoder"], lambda: components["codec"], "xtts-dvae", "0" * 64, cache)

    items = builder().build(clips)
    assert cache.stats.computed == 2
    builder().build(clips)
    assert cache.stats.computed == 2 and cache.stats.hits == 2  # codes come from the cache the second time
    mel_norms = torch.ones(80)
    batch = Collator(mel_norms)(items, random.Random(0))
    assert batch["cond_mels"].shape == (2, 1, 80, MAX_COND_SAMPLES // 256 + 1)  # padded to 6 s, as coqui
    assert batch["text_inputs"].dtype == torch.int32 and batch["audio_codes"].shape[1] == max(len(i.codes) for i in items)
    assert batch["cond_idxs"].shape == (2, 2)
    assert Collator(mel_norms)(items, None)["cond_idxs"] is None  # evaluation batches: no masking, as coqui


def test_the_gpt_loads_the_files_tensors_as_fp32_parameters_even_from_half_precision(tiny_base_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    from tts_host.plugins.xtts.files import FILES
    from tts_host.plugins.xtts.model import load_gpt, read_config

    config = read_config(tiny_base_dir)
    original = load_gpt(tiny_base_dir, config).state_dict()
    folder = copy_base(tiny_base_dir, tmp_path / "half")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in original.items()}, str(folder / FILES["gpt"]))

    loaded = load_gpt(folder, config)
    params = dict(loaded.named_parameters())
    assert params and {p.dtype for p in params.values()} == {torch.float32}
    assert not any(t.is_meta for t in loaded.state_dict().values())
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, original[name].half().float() if original[name].is_floating_point()
                           else original[name]), name
