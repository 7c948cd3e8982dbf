"""The device and precision policy and the distributed context that every backend's training loop shares."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tts_host.errors import TTSHostError
from tts_host.training.devices import cpu_has_bf16, pick_device, precision_policy
from tts_host.training.distributed import Distributed, barrier, distributed_context, local_rows, sum_across


def test_auto_precision_on_this_cpu_is_bf16_only_where_the_cpu_has_it():
    import torch

    cpu = torch.device("cpu")
    assert cpu_has_bf16() == bool(torch.cpu._is_avx512_bf16_supported())
    auto = precision_policy("auto", cpu)
    assert auto.name == ("bf16" if cpu_has_bf16() else "fp32")
    assert auto.scaler is None
    fp32, bf16 = precision_policy("fp32", cpu), precision_policy("bf16", cpu)
    layer = torch.nn.Linear(4, 4)
    with fp32.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.float32
    with bf16.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    assert (fp32.name, bf16.name) == ("fp32", "bf16") and fp32.state_dict() == {} == bf16.state_dict()


def test_fp16_on_the_cpu_and_unknown_precisions_are_one_line_errors():
    import torch

    with pytest.raises(TTSHostError) as refused:
        precision_policy("fp16", torch.device("cpu"))
    assert str(refused.value) == ("precision fp16 needs a CUDA GPU and this run is on the cpu: "
                                  "use bf16, fp32 or auto")
    with pytest.raises(TTSHostError, match=r"^precision must be one of auto, bf16, fp16, fp32 \(got 'fp8'\)$"):
        precision_policy("fp8", torch.device("cpu"))


@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_a_precision_policy_trains(setting):
    import torch

    torch.manual_seed(0)
    precision = precision_policy(setting, torch.device("cpu"))
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(64, 8)
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for _ in range(40):
        with precision.autocast():
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        precision.backward(loss)
        assert precision.clip(optimizer, 1.0) > 0
        precision.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 4


def test_the_device_is_the_cpu_when_asked_and_a_bad_choice_is_one_line(monkeypatch):
    import torch

    monkeypatch.setenv("TTS_HOST_DEVICE", "cpu")
    assert pick_device(Distributed()) == torch.device("cpu")
    monkeypatch.setenv("TTS_HOST_DEVICE", "tpu")
    with pytest.raises(TTSHostError, match=r"^TTS_HOST_DEVICE='tpu': expected one of auto, cpu, cuda$"):
        pick_device(Distributed())
    monkeypatch.delenv("TTS_HOST_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(Distributed()).type == expected


def test_one_process_is_rank_0_of_1_without_importing_torch():
    code = ("import os, sys\n"
            "os.environ.pop('WORLD_SIZE', None)\n"
            "from tts_host.training.distributed import barrier, distributed_context, sum_across\n"
            "context = distributed_context()\n"
            "barrier(context)\n"
            "assert sum_across([1, 2.5], context) == [1.0, 2.5]\n"
            "print(context.rank, context.world, context.main, 'torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "1", "True", "False"]
    assert distributed_context() == Distributed(0, 1)
    barrier(Distributed())


def test_every_row_of_a_global_batch_goes_to_exactly_one_rank_in_order():
    for world in (1, 2, 3, 4):
        for count in range(0, 9):
            parts = [local_rows(count, Distributed(rank, world)) for rank in range(world)]
            assert [row for part in parts for row in part] == list(range(count))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert sum_across([3], Distributed()) == [3.0]

