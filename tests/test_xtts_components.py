"""The five XTTS components, built through the plugin host from a tiny base, on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tts_host.errors import TTSHostError
from tts_host.host import get_host
from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)


def test_xtts_backend_composition_fits():
    host = get_host()
    assert host.composition_problems("xtts") == []
    kinds = {r.kind for r in host.components() if r.plugin == "xtts"}
    assert kinds == {"codec", "text_encoder", "acoustic_model", "vocoder", "speaker_encoder"}


def test_codec_speaker_encoder_and_text_encoder_on_speech(tiny_base_dir, speaker_clips):
    import librosa

    host = get_host()
    wav, text = speaker_clips("A", 1)[0]
    audio, _ = librosa.load(wav, sr=22050)
    codec = host.component("codec", "xtts-dvae").factory.build(model_folder=tiny_base_dir)
    codes = codec.encode(audio)
    assert codes.dtype == np.int64 and abs(len(codes) - len(audio) / 1024) <= 2
    assert codes.min() >= 0 and codes.max() < codec.codebook_size == 64

    encoder = host.component("speaker_encoder", "xtts-resnet-speaker").factory.build(model_folder=tiny_base_dir)
    vector = encoder.embed(librosa.resample(audio, orig_sr=22050, target_sr=16000))
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4

    text_encoder = host.component("text_encoder", "xtts-bpe").factory.build(model_folder=tiny_base_dir)
    ids = text_encoder.encode(text, "en")
    assert len(ids) > len(text) // 2 and 1 not in ids
    with pytest.raises(TTSHostError, match="characters the XTTS vocabulary does not know"):
        text_encoder.encode("日本語", "en")


def test_gpt_and_vocoder_make_24khz_audio(tiny_base_dir, speaker_clips):
    host = get_host()
    from tts_host.plugins.xtts.synthesis import compute_conditioning

    conditioning = compute_conditioning(tiny_base_dir, [speaker_clips("A", 1)[0][0]])
    assert conditioning["gpt_cond_latent"].shape == (1, 32, 64)
    assert conditioning["speaker_embedding"].shape == (1, 512, 1)
    text_encoder = host.component("text_encoder", "xtts-bpe").factory.build(model_folder=tiny_base_dir)
    gpt = host.component("acoustic_model", "xtts-gpt").factory.build(model_folder=tiny_base_dir)
    out = gpt.generate(text_encoder.encode("hello there", "en"), conditioning, max_new_tokens=20)
    assert out["latents"].shape[-1] == 64 and 0 < len(out["codes"]) <= 20
    vocoder = host.component("vocoder", "xtts-hifigan").factory.build(model_folder=tiny_base_dir)
    audio = vocoder.vocode({"latents": out["latents"], "speaker_embedding": conditioning["speaker_embedding"]})
    assert vocoder.sample_rate == 24000 and audio.dtype == np.float32
    expected = out["latents"].shape[1] * 1024 * 24000 / 22050  # one code = 1024 input samples
    assert abs(len(audio) - expected) <= 1024 and np.isfinite(audio).all()


def test_training_batches_match_coquis_layout(tiny_base_dir, speaker_clips, tmp_path):
    import random

    import torch

    from tts_host.data.cache import FeatureCache
    from tts_host.data.prepare import prepare_dataset
    from tts_host.plugins.xtts.features import MAX_COND_SAMPLES, Collator, ItemBuilder, records_from_dataset

    source = speaker_clips("A", 3)[0][0].parent
    dataset = prepare_dataset(source, tmp_path / "prepared", "A", 22050)
    cache = FeatureCache(tmp_path / "cache")
    items = ItemBuilder(tiny_base_dir, "0" * 64, cache).build(records_from_dataset(dataset)[:2])
    assert cache.stats.computed == 2
    ItemBuilder(tiny_base_dir, "0" * 64, cache).build(records_from_dataset(dataset)[:2])
    assert cache.stats.computed == 2 and cache.stats.hits == 2  # codes come from the cache the second time
    mel_norms = torch.ones(80)
    batch = Collator(mel_norms)(items, random.Random(0))
    assert batch["cond_mels"].shape == (2, 1, 80, MAX_COND_SAMPLES // 256 + 1)  # padded to 6 s, as coqui
    assert batch["text_inputs"].dtype == torch.int32 and batch["audio_codes"].shape[1] == max(len(i.codes) for i in items)
    assert batch["cond_idxs"].shape == (2, 2)
    assert Collator(mel_norms)(items, None)["cond_idxs"] is None  # evaluation batches: no masking, as coqui
