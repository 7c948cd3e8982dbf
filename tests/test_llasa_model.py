"""Llasa model level: tokenizer layout, presets, base init and validation of bad bases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llasa_fixtures import copy_base, tiny_base  # noqa: F401  (fixture)
from tts_host.errors import TTSHostError, ValidationError
from tts_host.plugins.llasa.layout import MARKER_TOKENS, SpeechLayout, speech_token


def test_layout_is_read_from_the_tokenizer_not_hard_coded():
    from tts_host.plugins.llasa.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(40, bpe_vocab_size=300)
    layout = SpeechLayout.from_tokenizer(tokenizer)
    assert layout.speech_count == 40
    # Speech tokens follow the text vocabulary and the eight markers.
    assert layout.speech_offset == max(layout.markers.values()) + 1
    assert sorted(layout.markers) == sorted(MARKER_TOKENS)
    assert tokenizer.convert_tokens_to_ids(speech_token(39)) == layout.speech_offset + 39
    assert layout.codes(layout.token_ids([0, 7, 39]) + [layout.speech_end_id]) == [0, 7, 39]


def test_llama3_numbering_is_reproduced_for_a_llama3_sized_vocabulary():
    vocab = {f"t{i}": i for i in range(128256)}
    vocab.update({token: 128256 + i for i, token in enumerate(MARKER_TOKENS)})
    vocab.update({speech_token(code): 128256 + 8 + code for code in range(65536)})
    layout = SpeechLayout.from_vocab(vocab)
    assert (layout.speech_offset, layout.speech_count) == (128264, 65536)
    assert len(vocab) == 193800


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda v: v.pop("<|SPEECH_GENERATION_END|>"), "actual missing <|SPEECH_GENERATION_END|>"),
        (lambda v: [v.pop(speech_token(c)) for c in range(4)], "actual no speech tokens"),
        (lambda v: v.pop(speech_token(2)), "actual <|s_2|> is missing"),
        (lambda v: v.__setitem__(speech_token(3), 9999), "expected <|s_3|> at id 12 (consecutive ids), actual <|s_3|> has id 9999"),
    ],
)
def test_bad_vocabularies_are_refused_in_one_line(damage, message):
    vocab = {"a": 0, **{token: 1 + i for i, token in enumerate(MARKER_TOKENS)}}
    vocab.update({speech_token(code): 9 + code for code in range(4)})
    damage(vocab)
    with pytest.raises(ValidationError) as info:
        SpeechLayout.from_vocab(vocab)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_preset_lists_the_known_ones(tmp_path: Path):
    from tts_host.plugins.llasa.base import init_base

    with pytest.raises(TTSHostError, match=r"unknown llasa preset 'huge' \(presets: small, tiny\)"):
        init_base("huge", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_tiny_base_is_hf_loadable_and_consistent(tiny_base: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tts_host.plugins.llasa.base import validate_base

    info = validate_base(tiny_base)
    assert info.codebook_size == 128 and info.layout.speech_count == 128
    assert sorted(p.name for p in (tiny_base / "model").glob("*.safetensors")) == ["model.safetensors"]
    assert not [p for p in tiny_base.rglob("*") if p.suffix in (".bin", ".pt", ".pth")]
    model = AutoModelForCausalLM.from_pretrained(tiny_base / "model")
    tokenizer = AutoTokenizer.from_pretrained(tiny_base / "model")
    assert model.config.vocab_size == len(tokenizer) == info.layout.speech_offset + 128
    generation = json.loads((tiny_base / "model" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == info.layout.speech_end_id
    assert (generation["temperature"], generation["top_p"], generation["do_sample"]) == (0.8, 1.0, True)


def test_codec_round_trip_on_real_speech(tiny_base: Path, speaker_clips):
    import librosa

    from tts_host.plugins.llasa.codec import XcodecCodec

    codec = XcodecCodec(tiny_base / "codec")
    wav, _ = speaker_clips("A", 1)[0]
    audio, _ = librosa.load(wav, sr=16000)
    codes = codec.encode(audio)
    assert codes.dtype == np.int64 and codes.min() >= 0 and codes.max() < 128
    assert abs(len(codes) - len(audio) / 320) <= 2  # 50 codes per second
    assert len(set(codes.tolist())) > 3  # speech gives varied codes
    decoded = codec.decode(codes)
    assert decoded.dtype == np.float32 and len(decoded) == len(codes) * 320
    assert np.isfinite(decoded).all() and np.abs(decoded).max() > 1e-3


def test_codebook_mismatch_names_both_files(tiny_base: Path, tmp_path: Path):
    from tts_host.plugins.llasa.base import validate_base

    base = copy_base(tiny_base, tmp_path / "base")
    config_path = base / "codec" / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_levels"] = [4, 4, 4, 4]
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValidationError) as info:
        validate_base(base)
    message = str(info.value)
    assert message.startswith(str(base / "model" / "tokenizer.json"))
    assert f"expected 256 speech tokens (the codebook size of the codec, {config_path})" in message
    assert "actual 128 speech tokens (<|s_0|>..<|s_127|>)" in message


def test_tokenizer_without_speech_tokens_is_refused(tiny_base: Path, tmp_path: Path):
    from tts_host.plugins.llasa.base import validate_base

    base = copy_base(tiny_base, tmp_path / "base")
    tokenizer_path = base / "model" / "tokenizer.json"
    data = json.loads(tokenizer_path.read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if not t["content"].startswith("<|s_")]
    tokenizer_path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match=r"model/tokenizer.json: expected speech tokens .* actual no speech tokens"):
        validate_base(base)


def test_pickled_weights_and_wrong_shapes_are_refused(tiny_base: Path, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    from tts_host.plugins.llasa.base import validate_base

    base = copy_base(tiny_base, tmp_path / "base")
    weights = base / "model" / "model.safetensors"
    tensors = load_file(weights)
    tensors["model.norm.weight"] = tensors["model.norm.weight"][:10].clone()
    save_file(tensors, weights)
    with pytest.raises(ValidationError, match=r"expected model.norm.weight of shape \[64\] \(from config.json\), actual shape \[10\]"):
        validate_base(base)
    weights.rename(weights.with_name("pytorch_model.bin"))
    with pytest.raises(ValidationError, match=r"actual none; found pytorch_model.bin"):
        validate_base(base)
