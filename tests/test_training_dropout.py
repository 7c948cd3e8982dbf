"""The parallel dropout mask: torch's keep/drop law, seeded by torch, independent of the thread count."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tts_host.training.dropout import Dropout, dropout, keep_mask, replace_dropouts  # noqa: E402


def test_mask_keeps_each_element_with_probability_one_minus_p():
    torch.manual_seed(0)
    mask = keep_mask((4, 500_000), 0.1)
    assert mask.dtype == torch.bool and mask.shape == (4, 500_000)
    dropped = 1.0 - mask.float().mean().item()
    assert abs(dropped - 0.1) < 0.002  # 2M draws: the standard error is 0.0002
    rows = 1.0 - mask.float().mean(dim=1)
    assert float((rows - 0.1).abs().max()) < 0.004  # no block is biased


def test_masks_follow_torch_seed_and_not_the_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch.manual_seed(7)
        first, second = keep_mask((3, 300_000), 0.1), keep_mask((3, 300_000), 0.1)
        torch.set_num_threads(1)
        torch.manual_seed(7)
        again = keep_mask((3, 300_000), 0.1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)  # each call draws a new mask


def test_dropout_scales_kept_values_and_their_gradients():
    torch.manual_seed(1)
    x = torch.randn(1000, 300, requires_grad=True)
    y = dropout(x, 0.25)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert dropout(x, 0.25, training=False) is x


def test_replace_dropouts_swaps_every_torch_dropout_and_keeps_its_rate():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.3),
                                torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.ReLU())).eval()
    assert replace_dropouts(model) == 2
    swapped = [m for m in model.modules() if isinstance(m, Dropout)]
    assert [m.p for m in swapped] == [0.3, 0.1]
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    x = torch.randn(8, 4)
    torch.testing.assert_close(model(x), torch.relu(model[0](x)))  # still in evaluation mode: no dropout
