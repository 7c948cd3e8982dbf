"""The shared training toolkit: exact resume, replay mixing, bucketing, sharding, logging, evaluation."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tts_host.errors import TTSHostError
from tts_host.training.batching import length_bucketed_batches, mix_replay, shard
from tts_host.training.evaluation import BestTracker, heldout_loss
from tts_host.training.metrics import MetricLogger
from tts_host.training.seeding import capture_rng, restore_rng, seed_everything
from tts_host.training.state import load_state, save_state


def _setup(seed: int = 0):
    import torch

    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.7)
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    import torch

    x = torch.randn(16, 8)  # drawn from torch's global generator: resume must restore it
    noise = float(np.random.normal()) * 0.01 + random.random() * 0.01
    y = x.sum(dim=1, keepdim=True) + noise
    loss = torch.nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def test_resume_reproduces_the_uninterrupted_trajectory(tmp_path):
    import torch

    model, optimizer, scheduler = _setup()
    straight = [_step(model, optimizer, scheduler) for _ in range(30)]
    assert sum(straight[-5:]) < sum(straight[:5]) / 2  # it really learns
    final = {k: v.clone() for k, v in model.state_dict().items()}

    model, optimizer, scheduler = _setup()
    first = [_step(model, optimizer, scheduler) for _ in range(17)]
    save_state(tmp_path / "state", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict(), "step": 17, "rng": capture_rng()})
    seed_everything(123)  # a fresh process: different generators, fresh objects
    model, optimizer, scheduler = _setup(seed=99)
    saved = load_state(tmp_path / "state")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    restore_rng(saved["rng"])
    assert saved["step"] == 17
    rest = [_step(model, optimizer, scheduler) for _ in range(13)]
    assert first + rest == pytest.approx(straight, rel=1e-6)
    for key, value in model.state_dict().items():
        assert torch.allclose(value, final[key], atol=1e-7)


def test_state_files_are_safetensors_and_json_and_damage_is_one_line(tmp_path):
    import torch

    folder = save_state(tmp_path / "state", {"w": torch.ones(3), "array": np.arange(4), "nested": {1: ("a", 2.5)}})
    assert sorted(p.name for p in folder.iterdir()) == ["state-00000.safetensors", "state.json"]
    loaded = load_state(folder)
    assert loaded["nested"] == {1: ("a", 2.5)} and loaded["array"].tolist() == [0, 1, 2, 3]
    (folder / "state-00000.safetensors").write_bytes(b"garbage")
    with pytest.raises(TTSHostError, match="saved training state is damaged"):
        load_state(folder)


def test_large_states_are_written_in_shards(tmp_path, monkeypatch):
    import torch

    import tts_host.training.state as state_module

    monkeypatch.setattr(state_module, "SHARD_BYTES", 1000)
    tensors = {f"t{i}": torch.full((100,), float(i)) for i in range(5)}  # 400 bytes each
    folder = save_state(tmp_path / "state", tensors)
    assert len(list(folder.glob("state-*.safetensors"))) == 3
    assert all(torch.equal(load_state(folder)[k], v) for k, v in tensors.items())


def test_replay_share_and_shuffling():
    rng = random.Random(0)
    mixed = mix_replay(list(range(80)), ["a"] * 5 + ["b"] * 45, 0.2, rng)
    earlier = [x for x in mixed if isinstance(x, str)]
    assert len(mixed) == 100 and len(earlier) == 20
    assert mix_replay([1, 2], ["x"], 0.0, rng) == [1, 2]
    with pytest.raises(ValueError):
        mix_replay([1], ["x"], 1.0, rng)


def test_length_buckets_cover_every_item_once_with_little_padding():
    rng = random.Random(1)
    lengths = [rng.uniform(1, 10) for _ in range(103)]
    batches = length_bucketed_batches(lengths, 4, rng)
    assert sorted(i for b in batches for i in b) == list(range(103))
    padding = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    rng2 = random.Random(1)
    order = list(range(103))
    rng2.shuffle(order)
    random_batches = [order[i:i + 4] for i in range(0, 103, 4)]
    random_padding = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in random_batches)
    assert padding < random_padding / 3


def test_shard_splits_evenly_like_a_distributed_sampler():
    parts = [shard(list(range(10)), rank, 3) for rank in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert set(sum(parts, [])) == set(range(10))
    assert shard([1, 2, 3], 0, 1) == [1, 2, 3]


def test_metric_logger_writes_tensorboard_and_a_loss_png(tmp_path):
    logger = MetricLogger(tmp_path / "logs")
    for step in range(1, 6):
        logger.log(step, loss=1.0 / step, heldout_loss=1.2 / step)
    png = logger.close()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "logs").iterdir())
    assert MetricLogger(None).close() is None


def test_heldout_loss_and_best_tracker():
    import torch

    model = torch.nn.Linear(2, 1)
    model.train()
    loss = heldout_loss(model, [torch.ones(1, 2)] * 3, lambda batch: model(batch).sum() * 0 + 2.0)
    assert loss == 2.0 and model.training
    tracker = BestTracker()
    assert tracker.offer(1, 3.0, {"w": torch.ones(1)})
    assert not tracker.offer(2, 3.5, {"w": torch.zeros(1)})
    assert tracker.offer(3, 2.0, {"w": torch.full((1,), 7.0)})
    assert tracker.best_step == 3 and tracker.best_state["w"].item() == 7.0


def test_best_tracker_can_keep_the_weights_on_disk(tmp_path):
    import torch

    tracker = BestTracker(tmp_path / "best")
    assert tracker.best_state is None
    tracker.offer(1, 2.0, {"w": torch.ones(2)})
    tracker.offer(2, 1.0, {"w": torch.full((2,), 3.0)})
    assert tracker.as_dict()["best_state"] is None  # nothing large in the resumable state
    again = BestTracker(tmp_path / "best")
    again.load(tracker.as_dict())
    assert again.best_step == 2 and again.best_state["w"].tolist() == [3.0, 3.0]


def test_best_tracker_restores_the_best_weights_into_a_live_model(tmp_path):
    import torch

    model = torch.nn.Linear(3, 2)
    for tracker in (BestTracker(tmp_path / "best"), BestTracker()):
        with torch.no_grad():
            model.weight.fill_(1.0)
        tracker.offer(4, 0.5, model.state_dict())
        with torch.no_grad():
            model.weight.fill_(9.0)  # training went on and got worse
        weight = model.weight
        tracker.restore_into(model)
        assert model.weight is weight and model.weight.eq(1.0).all()  # copied in place
    saved = BestTracker(tmp_path / "best")
    saved.load({"best_loss": 0.5, "best_step": 4, "best_state": None})
    with pytest.raises(TTSHostError, match="'bias' has no place in the model"):
        saved.restore_into(torch.nn.Linear(3, 2, bias=False))
    larger = torch.nn.Linear(3, 2)
    larger.register_parameter("extra", torch.nn.Parameter(torch.zeros(1)))
    with pytest.raises(TTSHostError, match="1 tensors are missing"):
        saved.restore_into(larger)


def test_allocator_settings_are_added_only_where_unset(monkeypatch):
    from tts_host.training.allocator import MALLOC_SETTINGS, allocator_environment, reexec_with_training_allocator

    env = allocator_environment({"MALLOC_TOP_PAD_": "1", "PATH": "/bin"})
    assert env["MALLOC_TOP_PAD_"] == "1" and env["PATH"] == "/bin"
    assert env["MALLOC_MMAP_THRESHOLD_"] == MALLOC_SETTINGS["MALLOC_MMAP_THRESHOLD_"]
    monkeypatch.setattr("sys.argv", ["pytest"])
    reexec_with_training_allocator()  # inside another program: never re-executes
