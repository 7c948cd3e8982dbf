"""Chinese through SoVITS: BERT features from the model folder's Chinese BERT (zeros without one, and for
English), cached per clip in training, and Chinese speech from a fine-tuned voice."""

from __future__ import annotations

import json
import numpy as np
import pytest
import soundfile as sf
import torch

from cli_helpers import run_cli_here
from sovits_fixtures import fast_config, tiny_base_path

CHINESE = ["今天天气很好，我们去公园散步吧。", "我喜欢喝茶，也喜欢看书。", "这是一个简单的测试句子。",
           "明天早上八点我们在学校门口见面。", "他的中文说得非常流利。", "请把窗户打开，房间里太热了。"]


def test_chinese_text_gets_bert_features_and_english_gets_zeros(tmp_path_factory):
    from tts_host.plugins.sovits.components import PhonemeTextEncoder

    text = PhonemeTextEncoder(tiny_base_path(tmp_path_factory))
    chinese = text.phonemes("你好，世界。", "zh")
    features = text.bert_features(chinese, 32)
    assert features.shape == (32, len(chinese.ids)) and features.abs().sum() > 0
    start = 0  # one vector per character, repeated for each of its phonemes
    for count in chinese.word2ph:
        assert torch.equal(features[:, start:start + count], features[:, start:start + 1].expand(-1, count))
        start += count
    english = text.phonemes("Hello world.", "en")
    assert torch.equal(text.bert_features(english, 32), torch.zeros(32, len(english.ids)))


def test_a_chinese_voice_trains_with_cached_bert_features_and_speaks(tmp_path_factory, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from tts_host.data import FeatureCache
    from tts_host.data.espeak import synthesize

    data = tmp_path / "zh"
    rows = []
    for index, sentence in enumerate(CHINESE):
        wav = synthesize(sentence, "cmn", data / f"zh_{index:02d}.wav")
        rows.append(f"{wav.name}|Li|ZH|{sentence}")
    (data / "zh.list").write_text("\n".join(rows) + "\n", encoding="utf-8")  # GPT-SoVITS's own list format
    home = tmp_path / "home"
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    code, out, err = run_cli_here("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")
    assert code == 0, err
    config = fast_config(tmp_path, s2_epochs=1, s1_epochs=3)
    args = ["finetune", "--backend", "sovits", "--speaker", "Li", "--data", str(data), "--base", "tiny",
            "--config", str(config), "--quiet"]
    code, out, err = run_cli_here(*args)
    assert code == 0, out + err
    cache = FeatureCache()
    bert_entries = [p for p in cache.root.rglob("*.safetensors") if "bert" in load_file(str(p))]
    assert len(bert_entries) == len(CHINESE)  # one per clip: computed once, through the cache
    shown = json.loads(run_cli_here("voices", "show", "Li", "--json")[1])
    assert shown["language"] == "zh" and shown["training"]["stages"]["s1"]["steps"] > 0
    wav = tmp_path / "li.wav"
    code, out, err = run_cli_here("speak", "--voice", "Li", "我们明天见。", "-o", str(wav), "--max-length", "150")
    assert code == 0, out + err
    audio, rate = sf.read(wav)
    assert rate == 32000 and np.abs(audio).max() > 1e-3 and np.isfinite(audio).all()
