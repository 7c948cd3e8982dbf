"""The padding-free conditioning path computes coqui's latents, gradients and loss, on less work."""

from __future__ import annotations

import random

import numpy as np
import pytest

from xtts_fixtures import tiny_base_dir  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def conditioning_batch(tiny_base_dir, speaker_clips):
    """The tiny base's GPT (train mode) and style mels of real speech: short slices, a full 6 s, silence."""
    import torch

    from tts_host.data.audio import read_audio
    from tts_host.plugins.xtts.features import MAX_COND_SAMPLES, conditioning_slice
    from tts_host.host import get_host
    from tts_host.plugins.xtts.model import load_tensor_file, mel_extractor

    gpt = get_host().components_for("xtts", tiny_base_dir)["acoustic_model"].gpt.train()
    speech = [read_audio(path, 22050) for path, _ in speaker_clips("A", 4)]
    rng = random.Random(0)
    pieces = [conditioning_slice(audio, rng)[0] for audio in speech[:2]]
    pieces.append(np.concatenate(speech * 3)[:MAX_COND_SAMPLES])  # a full 6 s slice: no padding at all
    pieces.append(np.zeros(MAX_COND_SAMPLES, dtype=np.float32))  # all silence: one frame standing for all
    style_mel = mel_extractor(load_tensor_file(tiny_base_dir / "mel_stats.pth"), "style")
    with torch.no_grad():
        mels = style_mel(torch.from_numpy(np.stack(pieces))).unsqueeze(1)
    return gpt, mels


def test_trailing_silence_collapses_to_one_weighted_frame(conditioning_batch):
    from tts_host.plugins.xtts.conditioning import collapse_trailing_repeats

    _, mels = conditioning_batch
    frames, counts = collapse_trailing_repeats(mels.squeeze(1))
    total = mels.shape[-1]
    assert counts.sum(dim=1).tolist() == [total] * 4  # every original frame is counted exactly once
    assert frames.shape[-1] == total  # the full 6 s row keeps its width
    kept = (counts > 0).sum(dim=1).tolist()
    assert kept[0] < total and kept[1] < total and kept[2] >= total - 1 and kept[3] == 1


def test_collapsed_latents_and_gradients_equal_coquis(conditioning_batch):
    import torch

    from tts_host.plugins.xtts.conditioning import style_latents

    gpt, mels = conditioning_batch
    torch.manual_seed(0)

    def run(compute):
        gpt.zero_grad(set_to_none=True)
        latents = compute()
        (latents * projection).sum().backward()
        return latents.detach(), {name: p.grad.clone() for name, p in gpt.named_parameters() if p.grad is not None}

    reference = gpt.get_style_emb(mels).transpose(1, 2)
    projection = torch.randn_like(reference)  # a loss whose gradients reach every conditioning weight
    expected, expected_grads = run(lambda: gpt.get_style_emb(mels).transpose(1, 2))
    actual, actual_grads = run(lambda: style_latents(gpt, mels))
    assert actual.shape == expected.shape == (4, 32, gpt.model_dim)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    assert expected_grads.keys() == actual_grads.keys() and len(expected_grads) > 20
    for name, grad in expected_grads.items():
        scale = float(grad.abs().max()) or 1.0
        assert float((actual_grads[name] - grad).abs().max()) <= 1e-3 * scale, name


def test_training_loss_equals_coquis_forward(conditioning_batch):
    import torch

    from tts_host.plugins.xtts.features import gpt_loss

    gpt, mels = conditioning_batch
    gpt.eval()
    try:
        batch = {"text_inputs": torch.randint(1, 30, (4, 12), dtype=torch.int32),
                 "text_lengths": torch.tensor([12, 9, 7, 12]),
                 "audio_codes": torch.randint(0, 64, (4, 20)),
                 "wav_lengths": torch.tensor([20, 16, 12, 20]) * 1024,
                 "cond_mels": mels, "cond_idxs": torch.tensor([[0, 70000], [100, 80000], [0, 132300], [0, 66150]])}
        with torch.no_grad():
            ours, _, _ = gpt_loss(gpt, batch, 0.01, 1.0)
            text, mel, _ = gpt(batch["text_inputs"], batch["text_lengths"], batch["audio_codes"],
                               batch["wav_lengths"], cond_mels=mels, cond_idxs=batch["cond_idxs"].clone())
        coqui = float(text * 0.01 + mel)
        assert abs(float(ours) - coqui) <= 1e-5 * abs(coqui)
    finally:
        gpt.train()


def test_a_one_clip_batch_whose_conditioning_covers_it_still_has_a_finite_loss(conditioning_batch):
    import math

    import torch

    from tts_host.plugins.xtts.features import gpt_loss, masks_every_audio_target

    gpt, mels = conditioning_batch
    batch = {"text_inputs": torch.randint(1, 30, (1, 12), dtype=torch.int32), "text_lengths": torch.tensor([12]),
             "audio_codes": torch.randint(0, 64, (1, 100)), "wav_lengths": torch.tensor([100 * 1024]),
             "cond_mels": mels[:1], "cond_idxs": torch.tensor([[68, 100086]])}  # an 11 s clip, a 4.5 s slice
    assert masks_every_audio_target(gpt, batch)
    with torch.no_grad():
        text, mel, _ = gpt(batch["text_inputs"], batch["text_lengths"], batch["audio_codes"], batch["wav_lengths"],
                           cond_mels=batch["cond_mels"], cond_idxs=batch["cond_idxs"].clone())
        assert math.isnan(float(mel))  # coqui's own forward: no audio target left
        loss, _, ours = gpt_loss(gpt, batch, 0.01, 1.0)
    assert math.isfinite(float(loss)) and math.isfinite(float(ours))
    later = dict(batch, cond_idxs=torch.tensor([[60000, 100086]]))  # the span leaves targets: coqui's loss as is
    assert not masks_every_audio_target(gpt, later)
    two_rows = {k: torch.cat([v, v]) for k, v in batch.items()}
    assert not masks_every_audio_target(gpt, two_rows)
