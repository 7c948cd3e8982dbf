"""Llasa training rows: LLaSA's layout, labels, the length cap, codes cached per clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from llasa_fixtures import base_rows, prepared_speaker, tiny_base  # noqa: F401  (fixture)
from tts_host.plugins.llasa.data import IGNORE, Skipped, build_rows


@pytest.fixture
def tokenizer_and_layout(tiny_base: Path):
    from transformers import AutoTokenizer

    from tts_host.plugins.llasa.layout import SpeechLayout

    tokenizer = AutoTokenizer.from_pretrained(tiny_base / "model")
    return tokenizer, SpeechLayout.from_tokenizer(tokenizer)


def test_row_equals_the_full_chat_template_and_labels_only_the_speech(tokenizer_and_layout):
    tokenizer, layout = tokenizer_and_layout
    codes = [5, 17, 17, 99, 0]
    rows, skipped = build_rows(tokenizer, layout, [("c1", "Hello world.", codes)], max_length=2048)
    assert skipped == []
    row = rows[0]
    speech = "".join(f"<|s_{c}|>" for c in codes)
    chat = [{"role": "user", "content": "Convert the text to speech:<|TEXT_UNDERSTANDING_START|>Hello world."
                                        "<|TEXT_UNDERSTANDING_END|>"},
            {"role": "assistant", "content": f"<|SPEECH_GENERATION_START|>{speech}<|SPEECH_GENERATION_END|>"}]
    assert row.input_ids == list(tokenizer.apply_chat_template(chat, tokenize=True)["input_ids"])
    start = row.input_ids.index(layout.speech_start_id)
    assert all(label == IGNORE for label in row.labels[: start + 1])
    assert row.labels[start + 1: start + 1 + len(codes)] == [layout.speech_offset + c for c in codes]
    assert row.labels[start + 1 + len(codes)] == layout.speech_end_id
    assert row.labels[-1] == IGNORE and row.speech_tokens == len(codes) + 1


def test_speaker_tag_goes_into_the_prompt(tokenizer_and_layout):
    tokenizer, layout = tokenizer_and_layout
    rows, _ = build_rows(tokenizer, layout, [("c1", "Hi.", [1, 2])], max_length=2048, speaker="B")
    assert "<|TEXT_UNDERSTANDING_START|>[B] Hi.<|TEXT_UNDERSTANDING_END|>" in tokenizer.decode(rows[0].input_ids)


def test_clip_over_the_length_cap_is_skipped_with_a_reason_not_truncated(tokenizer_and_layout):
    tokenizer, layout = tokenizer_and_layout
    rows, skipped = build_rows(tokenizer, layout, [("short", "Hi.", [1] * 10), ("long", "Hi.", [1] * 200)],
                               max_length=120)
    assert [r.clip_id for r in rows] == ["short"]
    assert skipped == [Skipped("long", skipped[0].reason)]
    assert "exceed the length cap of 120; skipped, not truncated" in skipped[0].reason
    assert "200 speech" in skipped[0].reason


def test_codes_are_computed_once_per_clip_through_the_feature_cache(tmp_path_factory, speaker_clips, tiny_base,
                                                                   tokenizer_and_layout, tmp_path: Path):
    from tts_host.data import FeatureCache

    tokenizer, layout = tokenizer_and_layout
    data = prepared_speaker(tmp_path_factory, speaker_clips, "A")
    cache = FeatureCache(tmp_path / "features")
    clips = data.train[:3]
    first, _ = base_rows(tokenizer, layout, clips, tiny_base, max_length=2048, cache=cache)
    assert (cache.stats.computed, cache.stats.hits) == (3, 0)
    reopened = FeatureCache(tmp_path / "features")
    again, _ = base_rows(tokenizer, layout, clips, tiny_base, max_length=2048, cache=reopened)
    assert (reopened.stats.computed, reopened.stats.hits) == (0, 3)
    assert [r.input_ids for r in again] == [r.input_ids for r in first]
    assert len(list((tmp_path / "features").rglob("*.safetensors"))) == 3
