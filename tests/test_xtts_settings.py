"""Fine-tune settings: YAML config, command-line overrides, one-line errors; the step plan."""

from __future__ import annotations

import pytest

from tts_host.errors import TTSHostError
from tts_host.plugins.xtts.training import FinetuneSettings, plan_batches


def test_config_file_then_overrides(tmp_path):
    config = tmp_path / "ft.yaml"
    config.write_text("finetune:\n  epochs: 4\n  learning_rate: 0.001\n  replay: 0.3\n")
    settings = FinetuneSettings.load(config, epochs=None, learning_rate=2e-4)
    assert (settings.epochs, settings.learning_rate, settings.batch_size) == (4, 2e-4, 2)
    assert settings.as_dict()["betas"] == [0.9, 0.96]
    # replay is the workflow's setting, the same for every backend: read from the same file
    from tts_host.training.settings import workflow_setting

    assert workflow_setting(config, "replay") == 0.3 and workflow_setting(config, "replay", 0.1) == 0.1
    assert workflow_setting(config, "forgetting_warning") == 0.10


def test_bad_settings_are_one_line_errors(tmp_path):
    config = tmp_path / "ft.yaml"
    config.write_text("epoch: 3\n")
    with pytest.raises(TTSHostError, match=r"ft.yaml: the xtts backend has no fine-tune setting epoch \(known: .*epochs"):
        FinetuneSettings.load(config)
    with pytest.raises(TTSHostError, match="batch size must be at least 1.*precision must be one of"):
        FinetuneSettings.load(None, batch_size=0, precision="fp8")
    with pytest.raises(TTSHostError, match="the xtts backend has no fine-tune setting lora"):
        FinetuneSettings.load(None, lora=8)
    config.write_text("- not a mapping\n")
    with pytest.raises(TTSHostError, match="expected a mapping"):
        FinetuneSettings.load(config)


class Item:
    def __init__(self, name: str, samples: int) -> None:
        self.name, self.samples = name, samples


def test_plan_is_seeded_bucketed_and_replays_the_asked_share():
    new = [Item(f"b{i}", 20000 + 1000 * i) for i in range(16)]
    earlier = [Item(f"a{i}", 30000) for i in range(10)]
    settings = FinetuneSettings(epochs=2, batch_size=4, seed=5)
    plan = plan_batches(new, earlier, settings, 0.2)
    assert [[i.name for i in b] for b in plan] == [[i.name for i in b] for b in plan_batches(new, earlier, settings,
                                                                                                 0.2)]
    epoch = [item for batch in plan[: len(plan) // 2] for item in batch]
    assert sum(item.name.startswith("a") for item in epoch) == 4 and len(epoch) == 20
    assert len(plan_batches(new, earlier, FinetuneSettings(epochs=2, batch_size=4, seed=5, max_steps=3))) == 3
