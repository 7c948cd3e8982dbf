"""XTTS vocoder: tts-host's torch HiFi-GAN (``xtts-hifigan``) next to the ONNX Runtime example plugin.

Usage::

    .venv/bin/python benchmarks/onnx_vocoder.py                        # tiny preset, 5 rounds, 3 s of audio
    .venv/bin/python benchmarks/onnx_vocoder.py --preset small --rounds 7

Builds a base of the preset (random weights, seed 0) and both vocoders from it on the CPU; the
plugin is imported from docs/examples/tts-host-onnx-vocoder, its export cache lies in the work
folder. Both vocode the same random GPT latents and d-vector; the modes run in turn, ``--rounds``
times, and each mode's best round is reported (other load only ever slows a round down) with
the spread (worst minus best), and the CPU seconds of its best round (comparable when
other jobs share the cores). Also: the first build (export included) and a cached build, the
speed ratio torch/ONNX of the best rounds, the real-time factor, and the largest absolute sample
difference between the two outputs. Figures go to stdout and ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "tts-host-onnx-vocoder"
FRAMES_PER_SECOND = 22050 / 1024  # GPT latents: one frame per DVAE code


def timed(function, *args, **kwargs):
    """``(result, wall seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def timed_round(function, *args) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of one call: CPU time stays comparable under other load."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def features(folder: Path, seconds: float) -> dict[str, np.ndarray]:
    """Random GPT latents for about ``seconds`` of speech and a unit d-vector (seed 0)."""
    width = json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_args"]["gpt_n_model_channels"]
    rng = np.random.default_rng(0)
    speaker = rng.standard_normal((1, 512, 1)).astype(np.float32)
    frames = max(1, round(seconds * FRAMES_PER_SECOND))
    return {"latents": rng.standard_normal((1, frames, width)).astype(np.float32),
            "speaker_embedding": speaker / np.linalg.norm(speaker)}


def main() -> None:
    """Build both vocoders, time them in turn, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the vocoded audio")
    parser.add_argument("--workdir", default=None, help="base and ONNX cache folder (default: a temp folder)")
    parser.add_argument("--out", default=None, help="write all figures here as JSON")
    options = parser.parse_args()

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="onnx-vocoder-bench-"))
    os.environ["TTS_HOST_HOME"] = str(workdir / "home")
    sys.path.insert(0, str(EXAMPLE))
    import onnxruntime
    import torch

    from tts_host.plugins.xtts.base import init_base
    from tts_host.plugins.xtts.components import HifiganVocoder
    from tts_host_onnx_vocoder.vocoder import OnnxHifiganVocoder

    folder = workdir / f"base-{options.preset}"
    if not folder.exists():
        init_base(options.preset, folder, seed=0)
    for stale in (workdir / "home" / "cache" / "onnx-vocoder").glob("*.onnx"):
        stale.unlink()
    onnx, first_build = timed(OnnxHifiganVocoder, model_folder=folder, device="cpu")
    onnx, cached_build = timed(OnnxHifiganVocoder, model_folder=folder, device="cpu")
    torch_vocoder, torch_build = timed(HifiganVocoder, model_folder=folder, device="cpu")
    inputs = features(folder, options.seconds)
    modes = {"torch": torch_vocoder, "onnx": onnx}
    outputs = {name: vocoder.vocode(inputs) for name, vocoder in modes.items()}  # warm-up
    rounds: dict[str, list[float]] = {name: [] for name in modes}
    cpu: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(options.rounds):
        for name, vocoder in modes.items():
            wall, used = timed_round(vocoder.vocode, inputs)
            rounds[name].append(wall)
            cpu[name].append(used)
    audio_seconds = len(outputs["onnx"]) / onnx.sample_rate
    best = {name: min(times) for name, times in rounds.items()}
    best_cpu = {name: min(times) for name, times in cpu.items()}
    report = {
        "preset": options.preset, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "frames": int(inputs["latents"].shape[1]),
        "audio_seconds": round(audio_seconds, 3), "rounds": rounds, "best": best,
        "cpu_rounds": cpu, "best_cpu": best_cpu, "cpu_ratio_torch_over_onnx": best_cpu["torch"] / best_cpu["onnx"],
        "spread": {name: max(times) - min(times) for name, times in rounds.items()},
        "speed_ratio_torch_over_onnx": best["torch"] / best["onnx"],
        "max_abs_difference": float(np.abs(outputs["torch"] - outputs["onnx"]).max()),
        "same_length": len(outputs["torch"]) == len(outputs["onnx"]),
        "build_seconds": {"onnx_first_with_export": first_build, "onnx_cached": cached_build, "torch": torch_build},
    }
    print(f"# XTTS vocoder, preset {options.preset}: {report['frames']} latent frames -> {audio_seconds:.2f} s "
          f"at {onnx.sample_rate} Hz; {os.cpu_count()} CPU cores ({report['cpu_capability']}), "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; best of {options.rounds} rounds")
    print(f"{'mode':<8}{'best s':>9}{'spread s':>10}{'RTF':>7}{'best CPU s':>12}")
    for name in modes:
        print(f"{name:<8}{best[name]:>9.3f}{report['spread'][name]:>10.3f}{best[name] / audio_seconds:>7.2f}"
              f"{best_cpu[name]:>12.3f}")
    print(f"speed ratio torch/onnx: {report['speed_ratio_torch_over_onnx']:.2f}x wall, "
          f"{report['cpu_ratio_torch_over_onnx']:.2f}x CPU time; largest absolute sample "
          f"difference: {report['max_abs_difference']:.2e} (same length: {report['same_length']})")
    print(f"builds: onnx first (export) {first_build:.2f} s, onnx cached {cached_build:.2f} s, "
          f"torch {torch_build:.2f} s")
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
