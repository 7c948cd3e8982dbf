"""A LoRA run's memory savings keep its maths: frozen weights stored in bf16, and activation checkpointing."""

from __future__ import annotations

import pytest

from xtts_fixtures import tiny_base_dir, training_batch  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def batch_and_folder(tiny_base_dir, speaker_clips, tmp_path_factory):
    """A real training batch of two espeak-ng clips, and the tiny base folder its GPTs load from."""
    _, batch = training_batch(tiny_base_dir, speaker_clips("B", 3)[0][0].parent, tmp_path_factory.mktemp("lora-memory"))
    return batch, tiny_base_dir


def lora_gpt(folder):
    """A fresh GPT of ``folder`` with a rank-4 adapter whose B half is non-zero (so both halves get gradients)."""
    import torch

    from tts_host import lora
    from tts_host.plugins.xtts.gpt_speedups import speed_up_for_training
    from tts_host.plugins.xtts.lora import lora_config
    from tts_host.plugins.xtts.model import load_gpt, read_config

    gpt = load_gpt(folder, read_config(folder))
    lora.add_adapter(gpt, lora_config(4, None, 0.0, ("attention", "mlp", "heads")), "voice", trainable=True)
    torch.manual_seed(0)
    for name, param in gpt.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    speed_up_for_training(gpt)
    return gpt.train()


def loss_and_gradients(gpt, batch, seed: int = 5):
    """coqui's training loss under bf16 autocast (dropout seeded) and the adapter's gradients."""
    import torch

    from tts_host.plugins.xtts.features import gpt_loss

    gpt.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = gpt_loss(gpt, batch, 0.01, 1.0)[0]
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in gpt.named_parameters() if p.requires_grad}


def saved_bytes(gpt, batch) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of one training loss."""
    import torch

    from tts_host.plugins.xtts.features import gpt_loss

    storages: dict[int, int] = {}

    def keep(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    params = {p.untyped_storage().data_ptr() for p in gpt.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            gpt_loss(gpt, batch, 0.01, 1.0)[0].backward()
    return sum(size for pointer, size in storages.items() if pointer not in params)


def test_frozen_weights_in_bf16_give_the_same_loss_and_adapter_gradients(batch_and_folder):
    import torch

    from tts_host.training.devices import Precision

    batch, folder = batch_and_folder
    gpt = lora_gpt(folder)
    expected_loss, expected_grads = loss_and_gradients(gpt, batch)
    Precision("bf16", "cpu", torch.bfloat16).store_frozen_weights(gpt)
    loss, grads = loss_and_gradients(gpt, batch)

    assert loss == expected_loss
    assert grads.keys() == expected_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-3, atol=1e-6, msg=name)
    block = gpt.gpt.h[0]
    assert block.attn.c_attn.base_layer.weight.dtype == torch.bfloat16  # frozen matrix layers: bf16
    assert gpt.mel_head.base_layer.weight.dtype == torch.bfloat16
    assert block.attn.c_attn.lora_A["voice"].weight.dtype == torch.float32  # the adapter trains in fp32
    assert block.ln_1.weight.dtype == torch.float32 and gpt.mel_embedding.weight.dtype == torch.float32


def test_fp32_and_full_fine_tunes_keep_their_weights_as_they_are(batch_and_folder):
    import torch

    from tts_host.plugins.xtts.model import load_gpt, read_config
    from tts_host.training.devices import Precision

    _, folder = batch_and_folder
    lora = lora_gpt(folder)
    Precision("fp32", "cpu").store_frozen_weights(lora)
    full = load_gpt(folder, read_config(folder))
    Precision("bf16", "cpu", torch.bfloat16).store_frozen_weights(full)  # nothing is frozen in a full fine-tune
    assert {p.dtype for p in lora.parameters()} == {p.dtype for p in full.parameters()} == {torch.float32}


def test_activation_checkpointing_repeats_the_gradients_and_keeps_less(batch_and_folder):
    import torch

    from tts_host.plugins.xtts.training import checkpointing

    batch, folder = batch_and_folder
    gpt = lora_gpt(folder)
    expected_loss, expected_grads = loss_and_gradients(gpt, batch)
    kept_plain = saved_bytes(gpt, batch)
    checkpointing(gpt, 1)
    loss, grads = loss_and_gradients(gpt, batch)  # dropout on: the recomputed blocks must draw the same masks
    kept_checkpointed = saved_bytes(gpt, batch)
    checkpointing(gpt, 2)
    kept_every_second = saved_bytes(gpt, batch)
    checkpointing(gpt, 0)

    assert loss == expected_loss
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-3, atol=1e-6, msg=name)
    assert kept_checkpointed < kept_every_second < kept_plain
    assert kept_checkpointed < kept_plain / 2
    assert saved_bytes(gpt, batch) == kept_plain  # off again: as before


def test_lora_runs_checkpoint_every_second_block_by_default_and_full_runs_none():
    from tts_host.errors import TTSHostError
    from tts_host.plugins.xtts.training import FinetuneSettings

    assert FinetuneSettings(lora_rank=8).activation_checkpointing == 2
    assert FinetuneSettings().activation_checkpointing == 0
    assert FinetuneSettings(lora_rank=8, activation_checkpointing=0).activation_checkpointing == 0
    for bad in (-1, True, 1.5, "all"):
        with pytest.raises(TTSHostError, match="activation_checkpointing must be 0"):
            FinetuneSettings(activation_checkpointing=bad)
