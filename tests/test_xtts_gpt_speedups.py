"""The training speed-ups of coqui's GPT keep its maths: same evaluation loss, same attention, seeded dropout."""

from __future__ import annotations

import pytest

from xtts_fixtures import tiny_base_dir, training_batch  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def gpt_and_batch(tiny_base_dir, speaker_clips, tmp_path_factory):
    """The tiny base's GPT and a real training batch of two espeak-ng clips."""
    acoustic, batch = training_batch(tiny_base_dir, speaker_clips("B", 3)[0][0].parent,
                                     tmp_path_factory.mktemp("speedups"))
    return acoustic.gpt, batch


def test_speedups_leave_the_evaluation_loss_unchanged(gpt_and_batch):
    import torch

    from tts_host.plugins.xtts.features import gpt_loss
    from tts_host.plugins.xtts.gpt_speedups import speed_up_for_training
    from tts_host.training.dropout import Dropout

    gpt, batch = gpt_and_batch
    gpt.eval()
    with torch.no_grad():
        before = float(gpt_loss(gpt, batch, 0.01, 1.0)[0])
        speed_up_for_training(gpt)
        after = float(gpt_loss(gpt, batch, 0.01, 1.0)[0])
    assert abs(after - before) <= 1e-5 * abs(before)
    assert not any(type(m) is torch.nn.Dropout for m in gpt.modules())
    assert sum(isinstance(m, Dropout) for m in gpt.modules()) >= 3 * len(gpt.gpt.h)


def test_explicit_attention_equals_sdpa():
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from tts_host.plugins.xtts.gpt_speedups import attention_with_dropout

    class Layer(torch.nn.Module):
        is_causal = True

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 40, 16) for _ in range(3))
    mask = torch.ones(2, 1, 40, 40, dtype=torch.bool).tril()
    mask[0, :, :, 30:] = False  # padded keys of the first row
    layer = Layer().train()
    expected = sdpa_attention_forward(layer, q, k, v, mask, dropout=0.0)[0]
    actual = attention_with_dropout(layer, q, k, v, mask, dropout=1e-12)[0]  # the explicit path, nothing dropped
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)
    causal = attention_with_dropout(layer, q, k, v, None, dropout=1e-12)[0]
    torch.testing.assert_close(causal, sdpa_attention_forward(layer, q, k, v, None, dropout=0.0, is_causal=True)[0],
                               rtol=1e-5, atol=1e-6)


def test_training_loss_repeats_under_the_same_seed_and_dropout_is_active(gpt_and_batch):
    import torch

    from tts_host.plugins.xtts.features import gpt_loss
    from tts_host.plugins.xtts.gpt_speedups import speed_up_for_training

    gpt, batch = gpt_and_batch
    speed_up_for_training(gpt)
    gpt.train()
    losses = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        with torch.no_grad():
            losses.append(float(gpt_loss(gpt, batch, 0.01, 1.0)[0]))
    gpt.eval()
    with torch.no_grad():
        evaluation = float(gpt_loss(gpt, batch, 0.01, 1.0)[0])
    assert losses[0] == losses[1]
    assert losses[0] != losses[2] and losses[0] != evaluation  # dropout draws new masks per seed
