"""Llasa fine-tuning: full and LoRA, loss falls, resumable, bad settings, torchrun = one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llasa_fixtures import base_rows, prepared_speaker, shared_cache, tiny_base  # noqa: F401  (fixture)
from tts_host.errors import TTSHostError
from tts_host.plugins.llasa.train import FinetuneSettings

@pytest.fixture
def rows_a(tmp_path_factory, speaker_clips, tiny_base: Path):
    """Training rows of speaker A on the tiny base (8 clips, codes from the shared cache)."""
    from transformers import AutoTokenizer

    from tts_host.plugins.llasa.layout import SpeechLayout

    data = prepared_speaker(tmp_path_factory, speaker_clips, "A")
    tokenizer = AutoTokenizer.from_pretrained(tiny_base / "model")
    rows, _ = base_rows(tokenizer, SpeechLayout.from_tokenizer(tokenizer), data.clips, tiny_base,
                        max_length=2048, speaker="A", cache=shared_cache(tmp_path_factory))
    return rows, tokenizer.pad_token_id


@pytest.mark.parametrize("rank", [0, -2])
def test_lora_rank_must_be_positive(rank):
    with pytest.raises(TTSHostError, match=rf"LoRA rank must be a positive integer \(e.g. --lora 8\), got {rank}"):
        FinetuneSettings(lora_rank=rank)


def test_an_interrupted_run_resumes_to_the_same_losses(rows_a, tiny_base, tmp_path):
    from tts_host.plugins.llasa.lora import load_lm
    from tts_host.plugins.llasa.train import finetune

    rows, pad = rows_a
    settings = FinetuneSettings(learning_rate=2e-3, batch_size=2, epochs=2, save_every=1)
    straight = finetune(load_lm(tiny_base / "model"), rows, tmp_path / "straight", settings, pad_id=pad)

    class Interrupted(Exception):
        pass

    def stop_at_five(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        finetune(load_lm(tiny_base / "model"), rows, tmp_path / "resumed", settings, pad_id=pad, on_step=stop_at_five)
    resumed = finetune(load_lm(tiny_base / "model"), rows, tmp_path / "resumed", settings, pad_id=pad)
    assert resumed.resumed_from == 4
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    other = FinetuneSettings(learning_rate=1e-3, batch_size=2, epochs=2)
    with pytest.raises(TTSHostError, match="written with other settings"):
        finetune(load_lm(tiny_base / "model"), rows, tmp_path / "resumed", other, pad_id=pad)


@pytest.mark.slow
def test_cli_finetune_under_torchrun_matches_one_process(tmp_path_factory, speaker_clips, tiny_base, tmp_path):
    """``torchrun --nproc_per_node 2`` runs the unchanged finetune command to the same per-step losses."""
    from tts_host.host import get_host
    from tts_host.speakers.library import Library

    data = prepared_speaker(tmp_path_factory, speaker_clips, "A").root
    losses = {}
    for procs in (1, 2):
        home = tmp_path / f"home-{procs}"
        with Library(home, host=get_host()) as library:
            library.add_base("llasa", tiny_base, "tiny")
        env = {**os.environ, "TTS_HOST_HOME": str(home), "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                   "-m", "tts_host.cli.main", "finetune", "--backend", "llasa", "--speaker", "A", "--data", str(data),
                   "--epochs", "2", "--batch-size", "2", "--lr", "2e-3", "--quiet"]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("stored checkpoint") == 1  # rank 0 alone writes and reports
        with Library(home, host=get_host()) as library:
            checkpoint = library.checkpoint(library.voice("A").checkpoint_id)
            losses[procs] = checkpoint.metrics["losses"]
    assert len(losses[1]) == len(losses[2]) == 2 * (len(prepared_speaker(tmp_path_factory, speaker_clips, "A").train) // 2)
    assert losses[2] == pytest.approx(losses[1], rel=1e-4)
    assert losses[1][-1] < losses[1][0]
