"""SoVITS's modules: the v2 architecture has GPT-SoVITS's exact tensors, names map both ways, the semantic
codec gives 25 Hz codes, s1's generation is bounded, and the regularisers do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsv_fixtures import manifest_shapes
from sovits_fixtures import tiny_base_path


def test_the_v2_architecture_has_exactly_the_published_tensor_names_and_shapes():
    from tts_host.plugins.sovits.config import S1Config, S2Config
    from tts_host.plugins.sovits.modelset import expected_shapes

    shapes = expected_shapes(S2Config.from_json({}), S1Config.from_json({}))
    assert {**shapes["s2_generator"], **shapes["s2_semantic"]} == manifest_shapes("s2")
    assert shapes["s1_weights"] == manifest_shapes("s1")
    assert set(shapes["s2_semantic"]) == {"ssl_proj.weight", "ssl_proj.bias"} | {
        f"quantizer.vq.layers.0._codebook.{k}" for k in ("inited", "cluster_size", "embed", "embed_avg")}


def test_names_map_to_the_runtime_modules_and_back(tmp_path_factory):
    from tts_host.plugins.sovits import keys
    from tts_host.plugins.sovits.modelset import load_weights

    base = tiny_base_path(tmp_path_factory)
    for role, there, back in (("s2_generator", keys.generator_from_upstream, keys.generator_to_upstream),
                              ("s2_semantic", keys.semantic_from_upstream, keys.semantic_to_upstream)):
        stored = load_weights(base, role)
        runtime = there(stored)
        assert any("parametrizations" in k for k in runtime) or role == "s2_semantic"
        again = back(runtime)
        assert set(again) == set(stored)
        assert all(torch.equal(again[k].float(), stored[k].float()) for k in stored)
    assert keys.generator_from_upstream({"flow.flows.6.pre.weight": torch.zeros(1)}) == {
        "flow.flows.3.pre.weight": torch.zeros(1)}


def test_the_semantic_codec_gives_25_codes_a_second_and_the_codebook_never_changes(tmp_path_factory):
    from tts_host.plugins.sovits.components import SemanticCodec

    codec = SemanticCodec(tiny_base_path(tmp_path_factory))
    before = {k: v.clone() for k, v in codec.quantizer.state_dict().items()}
    t = np.arange(16000 * 2) / 16000
    codes = codec.encode((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    assert codes.dtype == np.int64 and abs(len(codes) - 50) <= 1
    assert codes.min() >= 0 and codes.max() < codec.codebook_size
    codec.quantizer.train()  # asking for training mode changes nothing: the part is frozen
    codec.encode(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32))
    assert not codec.quantizer.training
    assert all(torch.equal(before[k], v) for k, v in codec.quantizer.state_dict().items())
    assert codec.vectors(torch.from_numpy(codes).unsqueeze(0)).shape == (1, 64, 2 * len(codes))


def test_s1_generation_is_bounded_and_holds_eos_back_for_the_first_tokens(tmp_path_factory):
    from tts_host.plugins.sovits.components import TextToSemanticModel

    s1 = TextToSemanticModel(tiny_base_path(tmp_path_factory)).model
    head = torch.nn.Linear(s1.ar_predict_layer.in_features, s1.ar_predict_layer.out_features)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[s1.eos] = 10.0  # every step's likeliest token is EOS
    s1.ar_predict_layer = head
    phonemes = torch.tensor([[10, 20, 30]])
    bert = torch.zeros(1, s1.bert_dim, 3)
    made = s1.generate(phonemes, bert, torch.tensor([[1, 2]]), top_k=1, min_tokens=5, max_tokens=50)
    assert made.shape == (1, 5)  # EOS wins as soon as it is allowed
    made = s1.generate(phonemes, bert, torch.tensor([[1, 2]]), top_k=1, min_tokens=100, max_tokens=7)
    assert made.shape == (1, 7)  # never longer than the budget


def test_cached_generation_matches_the_full_forward_pass(tmp_path_factory):
    """Greedy tokens with the KV cache equal those of re-running the whole sequence at every step."""
    from tts_host.plugins.sovits.components import TextToSemanticModel

    s1 = TextToSemanticModel(tiny_base_path(tmp_path_factory)).model
    phonemes, prompt = torch.tensor([[5, 9, 14, 3]]), torch.tensor([[7, 8, 9]])
    bert = torch.zeros(1, s1.bert_dim, 4)
    cached = s1.generate(phonemes, bert, prompt, top_k=1, repetition_penalty=1.0, min_tokens=8, max_tokens=8)[0]
    tokens = prompt
    for _ in range(8):
        codes = torch.cat([tokens, torch.tensor([[s1.eos]])], dim=1)  # the last input's prediction is the next token
        x = torch.cat([s1._text(phonemes, bert), s1.ar_audio_position(s1.ar_audio_embedding(codes))], dim=1)
        n, t = phonemes.size(1), codes.size(1)
        allowed = torch.ones(n + t, n + t, dtype=torch.bool).tril()
        allowed[:, :n] = True
        allowed[:n, n:] = False
        hidden, _ = s1._layers(x, allowed[None, None])
        logits = s1.ar_predict_layer(hidden[:, n + t - 2])
        logits[:, s1.eos] = float("-inf")
        tokens = torch.cat([tokens, logits.argmax(-1, keepdim=True)], dim=1)
    assert cached.tolist() == tokens[0, 3:].tolist()


def test_weight_ema_tracks_a_moving_average_and_swaps_in():
    from tts_host.plugins.sovits.regularisers import WeightEma

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    ema = WeightEma(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update()
    with torch.no_grad():
        layer.weight.fill_(2.0)
    ema.update()
    ema.swap_in()
    assert torch.allclose(layer.weight, torch.full((1, 2), 1.25))  # 0 -> 0.5 -> 1.25


def test_spec_augment_masks_bands_inside_each_item_and_leaves_the_input_alone():
    from tts_host.plugins.sovits.regularisers import spec_augment

    spec = torch.ones(2, 100, 50)
    masked = spec_augment(spec, torch.tensor([50, 20]), torch.Generator().manual_seed(0), time_width=0.2,
                          freq_width=10)
    assert torch.equal(spec, torch.ones(2, 100, 50))
    zeros = (masked == 0)
    assert zeros.any() and zeros.float().mean() < 0.5
    assert not zeros[1, :, 20:].all()  # masks fall inside the item's own frames or whole frequency bands


def test_speaker_mixup_mixes_only_within_a_speaker():
    from tts_host.plugins.sovits.regularisers import mix_voices

    voices = torch.tensor([[[0.0]], [[1.0]], [[10.0]]])
    torch.manual_seed(0)
    mixed = mix_voices(voices, ["A", "A", "B"], alpha=0.4)
    assert mixed[2].item() == 10.0  # B has no partner: unchanged
    assert 0.0 <= mixed[0].item() <= 0.5 and 0.5 <= mixed[1].item() <= 1.0  # own voice keeps the larger share
    assert torch.equal(mix_voices(voices, ["A", "A", "B"], alpha=0.0), voices)


def test_layer_drop_skips_layers_only_in_training(tmp_path_factory):
    from tts_host.plugins.sovits.components import TextToSemanticModel

    s1 = TextToSemanticModel(tiny_base_path(tmp_path_factory)).model
    x = torch.randn(1, 4, s1.ar_predict_layer.in_features)
    s1.layer_drop = 0.99
    s1.eval()
    _, caches = s1._layers(x, None)
    assert len(caches) == len(s1.h.layers)
    s1.train()
    torch.manual_seed(0)
    counts = [len(s1._layers(x, None)[1]) for _ in range(20)]
    assert min(counts) < len(s1.h.layers)


@pytest.mark.parametrize("setting, value, message", [
    ("ema_decay", 1.0, "ema_decay"), ("layer_drop", -0.1, "layer_drop"), ("s2_learning_rate", 0.0, "s2_learning_rate"),
    ("batch_size", 0, "batch_size"), ("precision", "fp8", "precision"), ("dropout", 1.5, "dropout"),
])
def test_bad_settings_are_one_line_errors(setting, value, message):
    from tts_host.errors import TTSHostError
    from tts_host.plugins.sovits.settings import SovitsSettings

    with pytest.raises(TTSHostError) as err:
        SovitsSettings(**{setting: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_epochs_and_learning_rate_set_both_stages():
    from tts_host.plugins.sovits.settings import SovitsSettings

    settings = SovitsSettings(epochs=3, learning_rate=0.01)
    assert (settings.s2_epochs, settings.s1_epochs) == (3, 3)
    assert (settings.s2_learning_rate, settings.s1_learning_rate) == (0.01, 0.01)
