"""The shared training toolkit: exact resume, replay mixing, bucketing, sharding, logging, evaluation,
settings files, and XTTS training under torchrun taking one process's steps."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from tts_host.errors import TTSHostError
from tts_host.training.batching import length_bucketed_batches, mix_replay
from tts_host.training.evaluation import BestTracker, heldout_loss
from tts_host.training.metrics import MetricLogger
from tts_host.training.seeding import capture_rng, restore_rng, seed_everything
from tts_host.training.settings import load_settings
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
        tracker.restore_into(model.state_dict())
        assert model.weight is weight and model.weight.eq(1.0).all()  # copied in place
    saved = BestTracker(tmp_path / "best")
    saved.load({"best_loss": 0.5, "best_step": 4, "best_state": None})
    with pytest.raises(TTSHostError, match="'bias' has no place in the model"):
        saved.restore_into(torch.nn.Linear(3, 2, bias=False).state_dict())
    larger = torch.nn.Linear(3, 2)
    larger.register_parameter("extra", torch.nn.Parameter(torch.zeros(1)))
    with pytest.raises(TTSHostError, match="1 tensors are missing"):
        saved.restore_into(larger.state_dict())


def test_allocator_settings_are_added_only_where_unset(monkeypatch):
    from tts_host.training.allocator import MALLOC_SETTINGS, allocator_environment, reexec_with_training_allocator

    env = allocator_environment({"MALLOC_TOP_PAD_": "1", "PATH": "/bin"})
    assert env["MALLOC_TOP_PAD_"] == "1" and env["PATH"] == "/bin"
    assert env["MALLOC_MMAP_THRESHOLD_"] == MALLOC_SETTINGS["MALLOC_MMAP_THRESHOLD_"]
    monkeypatch.setattr("sys.argv", ["pytest"])
    reexec_with_training_allocator()  # inside another program: never re-executes


@dataclass
class ToySettings:
    """A settings class for :func:`load_settings` (what each backend's ``FinetuneSettings`` is)."""

    epochs: int = 1
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    max_steps: int | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1 (got {self.epochs})")


def test_settings_come_from_defaults_then_the_file_then_the_overrides(tmp_path):
    config = tmp_path / "ft.yaml"
    config.write_text("components:\n  vocoder: onnx\nfinetune:\n  epochs: 4\n  learning_rate: 5e-6\n"
                      "  betas: [0.8, 0.9]\n  max_steps: null\n")
    settings = load_settings(ToySettings, "toy", config, {"epochs": None, "precision": "fp32"})
    assert settings == ToySettings(epochs=4, learning_rate=5e-6, betas=(0.8, 0.9), precision="fp32")
    config.write_text("components:\n  vocoder: onnx\nepochs: 3\n")  # no finetune: key; components: still ignored
    assert load_settings(ToySettings, "toy", config, {"epochs": 5}).epochs == 5
    assert load_settings(ToySettings, "toy", config, {}).epochs == 3
    assert load_settings(ToySettings, "toy", None, {}) == ToySettings()


def test_unknown_keys_and_bad_values_are_one_line_errors_naming_their_source(tmp_path):
    config = tmp_path / "ft.yaml"
    known = r"\(known: betas, epochs, learning_rate, max_steps, precision\)$"
    cases = [
        ("finetune:\n  epoch: 3\n", {}, rf"^{config}: the toy backend has no fine-tune setting epoch {known}"),
        ("epochs: 2\n", {"lora": 8}, rf"^the toy backend has no fine-tune setting lora {known}"),
        ("epochs: three\n", {}, rf"^{config}: fine-tune setting epochs must be an integer, got 'three'$"),
        ("betas: [0.9]\n", {}, rf"^{config}: fine-tune setting betas must be a list of 2 numbers, got \[0.9\]$"),
        ("max_steps: x\n", {}, rf"^{config}: fine-tune setting max_steps must be an integer or null, got 'x'$"),
        ("epochs: 2\n", {"learning_rate": "fast"}, r"^the toy backend: fine-tune setting learning_rate must be a"),
        ("epochs: 0\n", {}, rf"^{config}: toy fine-tune settings: epochs must be at least 1 \(got 0\)$"),
        ("- epochs\n", {}, rf"^{config}: expected a mapping of fine-tune settings$"),
        ("finetune:\n  epochs: 2\nepochs: 3\n", {}, rf"^{config}: unknown top-level key\(s\) epochs beside"),
        ("epochs: [\n", {}, rf"^{config}: cannot read the fine-tune config"),
    ]
    for text, overrides, message in cases:
        config.write_text(text)
        with pytest.raises(TTSHostError, match=message) as error:
            load_settings(ToySettings, "toy", config, overrides)
        assert "\n" not in str(error.value), text


def test_both_backends_read_the_common_setting_names(tmp_path):
    from tts_host.plugins.llasa.train import FinetuneSettings as LlasaSettings
    from tts_host.plugins.xtts.training import FinetuneSettings as XttsSettings

    config = tmp_path / "common.yaml"
    config.write_text("finetune:\n  epochs: 2\n  batch_size: 4\n  learning_rate: 1e-4\n  seed: 7\n"
                      "  precision: fp32\n  max_steps: 9\n  save_every: 3\n")
    for cls, backend in ((XttsSettings, "xtts"), (LlasaSettings, "llasa")):
        settings = load_settings(cls, backend, config, {"learning_rate": 2e-4})
        common = (settings.epochs, settings.batch_size, settings.learning_rate, settings.seed, settings.precision,
                  settings.max_steps, settings.save_every)
        assert common == (2, 4, 2e-4, 7, "fp32", 9, 3), backend
        with pytest.raises(TTSHostError, match="precision must be one of auto, bf16, fp16, fp32"):
            cls(precision="fp8")


def tiny_gpt() -> Any:
    """A 2-layer, 64-wide coqui XTTS GPT (the tiny preset's shape: [STOP] is text token 0), seeded."""
    import torch
    from TTS.tts.layers.xtts.gpt import GPT

    torch.manual_seed(0)
    return GPT(layers=2, model_dim=64, heads=4, max_text_tokens=402, max_mel_tokens=605, max_prompt_tokens=70,
               number_text_tokens=40, start_text_token=39, stop_text_token=0, num_audio_tokens=66,
               start_audio_token=64, stop_audio_token=65, code_stride_len=1024, use_perceiver_resampler=True)


def synthetic_clips(folder: Path, seconds: Sequence[float] = (1.5, 4.0, 2.5, 3.0, 2.0)) -> list[dict[str, Any]]:
    """Noise clips at 22.05 kHz with random text tokens and audio codes, as JSON-able records."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for index, duration in enumerate(seconds):
        samples = int(22050 * duration)
        path = folder / f"clip{index}.wav"
        sf.write(path, (0.1 * rng.standard_normal(samples)).astype(np.float32), 22050)
        clips.append({"id": f"c{index}", "path": str(path), "samples": samples,
                      "tokens": rng.integers(1, 39, 5 + 3 * index).tolist(),
                      "codes": rng.integers(0, 64, -(-samples // 1024)).tolist()})
    return clips


def train_items(clips: Sequence[dict[str, Any]]) -> list[Any]:
    """XTTS :class:`TrainItem` s of :func:`synthetic_clips`."""
    from tts_host.plugins.xtts.features import TrainItem
    from tts_host.training.clips import ClipRef

    return [TrainItem(ClipRef(c["id"], "S", c["path"], "0" * 64, "text"),
                      np.array(c["tokens"], dtype=np.int64), np.array(c["codes"], dtype=np.int64), c["samples"])
            for c in clips]


def test_parts_of_an_xtts_batch_weighted_by_their_targets_give_the_whole_batchs_loss(tmp_path):
    import torch

    from tts_host.plugins.xtts.features import Collator, gpt_loss, target_counts

    gpt, items, collator = tiny_gpt().eval(), train_items(synthetic_clips(tmp_path)), Collator(torch.ones(80))

    def weighted(batch_items: list[Any], parts: list[range], wide_last_span: bool = False) -> tuple[float, float, int]:
        """(whole batch's loss, the parts' weighted sum, the last part's audio targets)."""
        batches = [collator(batch_items, random.Random(5), rows) for rows in [None, *filter(None, parts)]]
        if wide_last_span:  # a span that leaves the last clip no audio target of its own
            for batch in (batches[0], batches[-1]):
                batch["cond_idxs"][-1] = torch.tensor([0, 100000])
        whole, totals = float(gpt_loss(gpt, batches[0], 0.01, 1.0)[0]), target_counts(gpt, batches[0])
        total = 0.0
        for part in batches[1:]:  # train_gpt builds no batch for an empty part
            (texts, mels), (_, text, mel) = target_counts(gpt, part), gpt_loss(gpt, part, 0.01, 1.0)
            total += 0.01 * float(text) * texts / totals[0] + (float(mel) * mels / totals[1] if mels else 0.0)
        return whole, total, mels

    with torch.no_grad():
        for batch_items, parts in ((items[:3], [range(0, 1), range(1, 3)]), (items[:4], [range(0, 2), range(2, 4)]),
                                   (items[1:2], [range(0, 0), range(0, 1)])):
            whole, total, _ = weighted(batch_items, parts)
            assert total == pytest.approx(whole, rel=2e-6)
        whole, total, last_part_targets = weighted(items[:3], [range(0, 2), range(2, 3)], wide_last_span=True)
        assert last_part_targets == 0 and math.isfinite(whole) and total == pytest.approx(whole, rel=2e-6)


WORKER = '''
"""Train the tiny XTTS GPT with train_gpt, alone or as one rank of a torchrun job."""
import json, sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, sys.argv[3])
from test_training import tiny_gpt, train_items
from tts_host.plugins.xtts.features import Collator
from tts_host.plugins.xtts.training import FinetuneSettings, evaluate_items, train_gpt
from tts_host.training.distributed import distributed_context

spec, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
context = distributed_context()
gpt = tiny_gpt()
for module in gpt.modules():  # dropout masks depend on how a batch is split: compare the arithmetic alone
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        module.p = 0.0
items, collator, settings = train_items(spec["clips"]), Collator(torch.ones(80)), FinetuneSettings(**spec["settings"])
before = evaluate_items(gpt, collator, items, settings)
result = train_gpt(gpt, collator, items[:4], [], items[4:], settings, out / "state", fingerprint="test",
                   progress=False, context=context)
after = evaluate_items(gpt, collator, items, settings)
save_file({k: v.contiguous() for k, v in result.gpt_state.items()}, str(out / f"gpt-{context.rank}.safetensors"))
if context.main:
    report = {"before": before, "after": after, "losses": [loss for _, loss in result.train_losses],
              "world": context.world}
    (out / "report.json").write_text(json.dumps(report))
'''


@pytest.mark.slow
def test_xtts_training_under_torchrun_takes_the_steps_of_one_process(tmp_path):
    """Two ranks share every global batch (3 clips, then 1: one rank's part is empty) and end with one process's GPT."""
    import torch
    from safetensors.torch import load_file

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"clips": synthetic_clips(tmp_path / "clips"), "settings": {
        "epochs": 2, "batch_size": 3, "learning_rate": 1e-3, "grad_clip": 1.0, "max_steps": 3, "seed": 3,
        "save_every": 0, "precision": "fp32"}}))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TTS_HOST_DEVICE": "cpu"}
    results = {}
    for procs in (1, 2):
        out = tmp_path / f"run-{procs}"
        out.mkdir()
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
        command = [*(launcher if procs > 1 else [sys.executable]), str(script), str(spec), str(out),
                   str(Path(__file__).parent)]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        results[procs] = json.loads((out / "report.json").read_text()), load_file(str(out / "gpt-0.safetensors"))
    (one, one_gpt), (two, two_gpt) = results[1], results[2]
    other_rank = load_file(str(tmp_path / "run-2" / "gpt-1.safetensors"))
    assert all(torch.equal(other_rank[name], value) for name, value in two_gpt.items())  # every rank ends alike
    assert (one["world"], two["world"]) == (1, 2)
    assert len(one["losses"]) == 3 and two["losses"] == pytest.approx(one["losses"], rel=1e-5)
    assert one["after"] < one["before"] and two["after"] == pytest.approx(one["after"], rel=1e-5)
    assert one_gpt.keys() == two_gpt.keys()
    for name, value in one_gpt.items():
        torch.testing.assert_close(two_gpt[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_a_run_killed_while_states_were_swapped_resumes_from_the_previous_state(tmp_path):
    """save_state moves the previous state aside before moving the new one in: a run killed in between leaves no
    state at its place, and resuming takes the previous one back."""
    import torch

    from tts_host.training.state import check_resume

    folder = save_state(tmp_path / "state", {"step": 3, "w": torch.ones(2)})
    folder.replace(folder.with_name(".state.old"))  # killed between the two renames
    check_resume(folder, resume=True, restart=False)  # finds the previous state: no "nothing to resume"
    assert load_state(folder)["step"] == 3 and folder.is_dir()
