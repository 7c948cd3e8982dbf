"""SoVITS under ``torchrun --nproc_per_node 2``: every batch sharded, gradients averaged, rank 0 alone writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sovits_fixtures import fast_config, prepared_speaker


@pytest.mark.slow
def test_cli_finetune_under_torchrun_matches_one_process(tmp_path_factory, speaker_clips, tmp_path):
    """s1 has no random draw once dropout is off, so its losses and weights match one process's;
    s2 (random slices and posterior noise, drawn per process) trains, and its losses are finite."""
    import math

    from safetensors.torch import load_file

    from tts_host.host import get_host
    from tts_host.speakers import Library

    data = prepared_speaker(tmp_path_factory, speaker_clips, "A")
    config = fast_config(tmp_path, s2_epochs=1, s1_epochs=3, batch_size=2, dropout=0.0)
    results = {}
    for procs in (1, 2):
        home = tmp_path / f"home-{procs}"
        env = {**os.environ, "TTS_HOST_HOME": str(home), "OMP_NUM_THREADS": "1"}
        init = subprocess.run([sys.executable, "-m", "tts_host.cli.main", "base", "init", "sovits", "--preset",
                               "tiny", "--name", "tiny"], env=env, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stderr
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                              "-m", "tts_host.cli.main", "finetune", "--backend", "sovits", "--speaker", "A", "--data",
                              str(data), "--config", str(config), "--quiet"],
                             env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("stored checkpoint") == 1  # rank 0 alone reports
        with Library(home, host=get_host()) as lib:
            [checkpoint] = lib.checkpoints()  # one library write, by rank 0
            assert [v.name for v in lib.voices()] == ["A"]
            files = {f.role: lib.blob_path(f.sha256) for f in checkpoint.files}
            start = {f.role: lib.blob_path(f.sha256) for f in lib.base("tiny").files}["s1_weights"]
            results[procs] = {"s1": load_file(str(files["s1_weights"])), "stages": checkpoint.metrics["stages"],
                              "start": load_file(str(start))}
    assert results[2]["stages"]["s1"]["losses"] == pytest.approx(results[1]["stages"]["s1"]["losses"], rel=1e-4)
    # Adam divides by the gradients' running size, so where a gradient is near zero the two runs' float
    # rounding becomes a whole step. The attention's key biases get no true gradient at all (softmax ignores
    # them), so the packed in_proj biases are left out; every other tensor's update must agree as a whole.
    for name, value in results[1]["s1"].items():
        update = value - results[1]["start"][name]
        if update.norm() > 0 and not name.endswith("in_proj_bias"):
            assert (results[2]["s1"][name] - value).norm() < 0.05 * update.norm(), name
    assert all(math.isfinite(x) for x in results[2]["stages"]["s2"]["losses"])
