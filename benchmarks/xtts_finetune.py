"""XTTS fine-tuning and synthesis: coqui-tts's GPTTrainer against tts-host, each in its own process.

Usage::

    .venv/bin/python benchmarks/xtts_finetune.py                       # small preset, both clip sets, + v2
    .venv/bin/python benchmarks/xtts_finetune.py --steps 40 --repeats 3 --quality-steps 200
    .venv/bin/python benchmarks/xtts_finetune.py --skip-v2 --clips long --steps 10  # quick look

Every run of a table uses the same prepared data (espeak-ng speech through tts-host's dataset
pipeline), the same base weights (``base init`` of the preset), batch size and number of
optimizer steps. Two clip sets: ``short`` (one sentence per clip, 2.5-4 s: shorter than coqui's
3-6 s conditioning slices, so most of each 6 s conditioning input is padding) and ``long`` (two
or three sentences per clip, 5.5-11 s: what fine-tuning data usually looks like). Runs:

- ``coqui``: GPTTrainer through coqui's Trainer, as a user runs it (importing coqui's trainer
  dataset module drops torch to one thread);
- ``coqui-threads``: the same with torch's thread count restored;
- ``tts-host``: ``finetune`` with its defaults (bf16 autocast where the CPU has it);
- ``tts-host-fp32``: the same in fp32.

The modes run in turn, ``--repeats`` rounds, and each mode's best round is reported (the
machine's other load only ever slows a run down). Seconds per step are the median interval
between consecutive optimizer steps, skipping the first two (optimizer-state allocation); peak
RSS is the process's maximum resident set. A same-loss check computes coqui's GPTTrainer loss
and tts-host's loss on coqui's first batch from the same weights in fp32. A second table
compares synthesis: coqui's ``Xtts.inference`` against tts-host's ``synthesize`` (fp32 and
bf16) on the same model, text, seed and token budget, and time to first audio with streaming.
Figures go to stdout and ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTH_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank."
LR = 5e-6


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_seconds(stamps: list[float]) -> float:
    """Median interval between consecutive step stamps, skipping the first two steps."""
    intervals = [b - a for a, b in zip(stamps, stamps[1:])][2:] or [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(intervals) if intervals else float("nan")


# -- setup (the parent process) ------------------------------------------------------------
def prepare(workdir: Path, presets: list[str], clip_sets: list[str]) -> dict[str, str]:
    """Speech, one prepared dataset per clip set and one base per preset, shared by every run."""
    from tts_host.data.espeak import SENTENCES, VOICES, speak_folder
    from tts_host.data.prepare import prepare_dataset
    from tts_host.plugins.xtts.base import init_base

    texts = {"short": SENTENCES,
             "long": [" ".join(SENTENCES[i:i + 2 + (i // 2) % 2]) for i in range(0, len(SENTENCES), 2)]}
    paths = {}
    for name in clip_sets:
        speech = speak_folder(VOICES["A"], workdir / f"speech-{name}", texts[name], speed=150)
        paths[name] = str(prepare_dataset(speech, workdir / f"prepared-{name}", "bench", 22050).root)
    for preset in presets:
        base = workdir / f"base-{preset}"
        if not (base / "config.json").exists():
            shutil.rmtree(base, ignore_errors=True)
            init_base(preset, base, seed=0)
        paths[preset] = str(base)
    return paths


def run_worker(mode: str, args: argparse.Namespace, base: str, data: str, steps: int, extra: list[str] = ()) -> dict:
    """Run one measurement in a fresh process; returns its JSON result."""
    out = Path(args.workdir) / f"result-{mode}-{Path(base).name}-{steps}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--worker", mode, "--base", base, "--data", data, "--steps", str(steps),
               "--batch-size", str(args.batch_size), "--result", str(out), "--workdir", args.workdir, *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if mode.startswith("tts-host"):  # what `tts-host finetune` sets up for itself before torch loads
        from tts_host.training.allocator import allocator_environment

        env = allocator_environment(env)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        return {"mode": mode, "error": f"exit {done.returncode}: {tail}"}
    result = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - started
    return result


# -- workers (each its own process) ---------------------------------------------------------
def _train_clips(data: str):
    from tts_host.data.dataset import load_prepared

    dataset = load_prepared(data)
    return dataset, dataset.train, dataset.heldout


def coqui_trainer(base: str, data: str, steps: int, batch_size: int, workdir: str, *, restore_threads: bool):
    """GPTTrainer through coqui's Trainer with the base's weights; returns the model and step stamps."""
    import torch

    threads = torch.get_num_threads()
    from trainer import Trainer, TrainerArgs
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTArgs, GPTTrainer, GPTTrainerConfig

    if restore_threads:
        torch.set_num_threads(threads)
    base_dir = Path(base)
    config_json = json.loads((base_dir / "config.json").read_text())
    args = GPTArgs(**{k: v for k, v in config_json["model_args"].items() if k in GPTArgs.__dataclass_fields__})
    args.xtts_checkpoint = str(base_dir / "model.pth")
    args.dvae_checkpoint = str(base_dir / "dvae.pth")
    args.mel_norm_file = str(base_dir / "mel_stats.pth")
    args.tokenizer_file = str(base_dir / "vocab.json")
    args.gpt_checkpoint = ""
    dataset, train, heldout = _train_clips(data)
    # One epoch over exactly steps x batch_size samples: the same number of optimizer steps as tts-host.
    train = [train[i % len(train)] for i in range(steps * batch_size)]
    out = Path(workdir) / f"coqui-run-{os.getpid()}"
    config = GPTTrainerConfig(
        output_path=str(out), model_args=args, run_name="bench", project_name="bench", dashboard_logger="tensorboard",
        batch_size=batch_size, eval_batch_size=batch_size, num_loader_workers=0, num_eval_loader_workers=0,
        epochs=1, print_step=10_000, plot_step=10_000, save_step=1_000_000,
        save_checkpoints=False, save_best_after=10**9, run_eval=False, print_eval=False,
        optimizer="AdamW", optimizer_wd_only_on_weights=True,
        optimizer_params={"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": 1e-2},
        lr=LR, lr_scheduler="MultiStepLR", lr_scheduler_params={"milestones": [10**9], "gamma": 0.5},
        languages=config_json["languages"], test_sentences=[],
    )
    model = GPTTrainer.init_from_config(config)
    samples = [{"text": c.text, "audio_file": str(c.audio_path), "speaker_name": "bench", "root_path": data,
                "language": c.language, "audio_unique_name": c.id} for c in train]
    stamps: list[float] = []
    original = model.format_batch_on_device

    def timed(batch):
        stamps.append(time.perf_counter())
        return original(batch)

    model.format_batch_on_device = timed
    trainer = Trainer(TrainerArgs(), config, str(out), model=model, train_samples=samples, eval_samples=None)
    return trainer, model, stamps, out


def worker_coqui(options) -> dict:
    """Seconds per step of coqui's Trainer.fit with GPTTrainer (threads as imported, or restored)."""
    import torch

    trainer, model, stamps, out = coqui_trainer(options.base, options.data, options.steps, options.batch_size,
                                                options.workdir, restore_threads=options.worker == "coqui-threads")
    started = time.perf_counter()
    trainer.fit()
    total = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {"steps": len(stamps), "seconds_per_step": step_seconds(stamps), "fit_seconds": total,
            "threads": torch.get_num_threads()}


def worker_tts_host(options) -> dict:
    """Seconds per step of tts-host's fine-tune through the library API, and its losses."""
    import torch

    from tts_host.contract import FinetuneRequest
    from tts_host.host import get_host
    from tts_host.speakers.library import Library
    from tts_host.training.devices import pick_device, precision_policy

    home = Path(options.workdir) / f"home-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    stamps: list[float] = []
    precision = options.precision or ("fp32" if options.worker == "tts-host-fp32" else "auto")
    with Library(home, host=get_host()) as library:
        backend = library.backend("xtts")
        library.add_base(backend, options.base, "bench")
        dataset, train, _ = _train_clips(options.data)
        per_epoch = max(1, -(-len(train) // options.batch_size))
        request = FinetuneRequest(
            speaker="bench", data=Path(options.data), base="bench", batch_size=options.batch_size,
            learning_rate=LR, epochs=-(-options.steps // per_epoch), progress=False,
            on_step=lambda step, total, loss: stamps.append(time.perf_counter()),
            settings={"max_steps": options.steps, "precision": precision, "save_every": 10**9})
        metrics = backend.finetune(library, request).metrics
    shutil.rmtree(home, ignore_errors=True)
    return {"steps": len(stamps), "seconds_per_step": step_seconds(stamps), "threads": torch.get_num_threads(),
            "bf16": precision_policy(precision, pick_device()).name == "bf16",
            "train_loss_first": metrics["train_loss_first"], "train_loss_last": metrics["train_loss_last"],
            "heldout_loss": metrics["heldout"]["bench"]["after"]}


def worker_loss_check(options) -> dict:
    """coqui's loss and tts-host's loss on coqui's first batch, same weights, fp32, dropout off."""
    import torch

    from tts_host.host import get_host
    from tts_host.plugins.xtts.features import gpt_loss

    trainer, model, _, out = coqui_trainer(options.base, options.data, 1, options.batch_size, options.workdir,
                                           restore_threads=True)
    loader = model.get_data_loader(model.config, samples=trainer.train_samples, is_eval=False)
    batch = model.format_batch_on_device(model.format_batch(next(iter(loader))))
    model.xtts.gpt.eval()
    ours = get_host().components_for("xtts", Path(options.base))["acoustic_model"].gpt.eval()
    with torch.no_grad():
        coqui_batch = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        _, coqui_losses = model.train_step(coqui_batch, None)
        tts_batch = {"text_inputs": batch["text_inputs"], "text_lengths": batch["text_lengths"],
                     "audio_codes": batch["audio_codes"], "wav_lengths": batch["wav_lengths"],
                     "cond_mels": batch["cond_mels"], "cond_idxs": batch["cond_idxs"]}
        args = model.args
        our_loss, _, _ = gpt_loss(ours, tts_batch, args.gpt_loss_text_ce_weight, args.gpt_loss_mel_ce_weight)
    shutil.rmtree(out, ignore_errors=True)
    coqui_loss = float(coqui_losses["loss"])
    relative = abs(float(our_loss) - coqui_loss) / abs(coqui_loss)
    return {"coqui_loss": coqui_loss, "tts_host_loss": float(our_loss), "relative_difference": relative,
            "same": relative <= 1e-4}


def worker_synthesis(options) -> dict:
    """RTF of coqui's Xtts.inference and tts-host's synthesize (fp32, bf16, streaming) on the same model."""
    import numpy as np
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.plugins.xtts.synthesis import clone_conditioning, synthesize
    from tts_host.speech import audio_token_budget

    _, train, _ = _train_clips(options.data)
    components = get_host().components_for("xtts", Path(options.base))
    conditioning = clone_conditioning(components, [Path(train[0].audio_path)])
    acoustic = components["acoustic_model"]  # coqui gets the GPT token budget tts-host gives the text
    budget = audio_token_budget(SYNTH_TEXT, acoustic.codes_per_second, acoustic.max_audio_tokens)
    config = XttsConfig()
    config.load_json(str(Path(options.base) / "config.json"))
    coqui = Xtts(config)
    coqui.load_checkpoint(config, checkpoint_dir=options.base, eval=True)
    sampling = {name: getattr(config, name) for name in ("temperature", "top_k", "top_p", "repetition_penalty",
                                                          "length_penalty")}
    latent = torch.from_numpy(conditioning["gpt_cond_latent"])
    speaker = torch.from_numpy(conditioning["speaker_embedding"])
    out = Path(options.workdir) / "synthesis.wav"  # SpeakRequest names a file; synthesize writes none
    results = {}
    for run in range(2):  # the first run of each warms up; the second is reported
        torch.manual_seed(0)
        started = time.perf_counter()
        wav = coqui.inference(SYNTH_TEXT, "en", latent, speaker, max_new_tokens=budget, **sampling)["wav"]
        results["coqui"] = {"seconds": time.perf_counter() - started, "audio": len(wav) / 24000}
        for name, precision, stream in (("tts-host", "fp32", False), ("tts-host-bf16", "bf16", False),
                                        ("tts-host-stream", "fp32", True)):
            request = SpeakRequest("bench", SYNTH_TEXT, out, stream=stream, precision=precision)
            started = time.perf_counter()
            speech = synthesize(components, conditioning, "en", request)
            results[name] = {"seconds": time.perf_counter() - started, "audio": len(speech.audio) / speech.sample_rate,
                             "first_audio": speech.first_chunk_seconds}
    for entry in results.values():
        entry["rtf"] = entry["seconds"] / entry["audio"] if entry["audio"] else float("nan")
    assert all(np.isfinite(v["rtf"]) for v in results.values())
    results["tokens"] = budget
    return results


TRAINING_MODES = ("coqui", "coqui-threads", "tts-host", "tts-host-fp32")
WORKERS = {"coqui": worker_coqui, "coqui-threads": worker_coqui, "tts-host": worker_tts_host,
           "tts-host-fp32": worker_tts_host,
           "loss-check": worker_loss_check, "synthesis": worker_synthesis}


# -- report ---------------------------------------------------------------------------------
def best_rounds(modes: tuple[str, ...], repeats: int, run) -> list[dict]:
    """Run every mode ``repeats`` times in turn (``run(mode)``); keep each mode's fastest round and lowest peak RSS."""
    rounds: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:
            rounds[mode].append(run(mode))
    rows = []
    for mode in modes:
        good = [r for r in rounds[mode] if "error" not in r]
        if not good:
            rows.append(rounds[mode][0])
            continue
        best = dict(min(good, key=lambda r: r["seconds_per_step"]))
        best["peak_rss_mb"] = min(r["peak_rss_mb"] for r in good)
        best["rounds_seconds_per_step"] = [r["seconds_per_step"] for r in good]
        rows.append(best)
    return rows


def table(rows: list[dict], title: str) -> list[str]:
    """The per-step table of one preset and clip set."""
    lines = [f"\n## fine-tuning, {title}",
             f"{'run':<15}{'s/step':>9}{'peak RSS MiB':>14}{'threads':>9}{'vs coqui':>10}{'vs coqui+threads':>18}"]
    by_mode = {r["mode"]: r for r in rows}
    for row in rows:
        if "error" in row:
            lines.append(f"{row['mode']:<15} failed: {row['error']}")
            continue
        ratio = lambda other: (by_mode[other]["seconds_per_step"] / row["seconds_per_step"]
                               if other in by_mode and "error" not in by_mode[other] else float("nan"))
        lines.append(f"{row['mode']:<15}{row['seconds_per_step']:>9.3f}{row['peak_rss_mb']:>14.0f}{row['threads']:>9}"
                     f"{ratio('coqui'):>9.2f}x{ratio('coqui-threads'):>17.2f}x")
    return lines


def main() -> None:
    """Prepare shared data and bases, run every measurement in its own process, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "out" / "xtts"))
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--v2-steps", type=int, default=4, help="at least 4: the first two steps are not timed")
    parser.add_argument("--skip-v2", action="store_true")
    parser.add_argument("--clips", choices=("short", "long", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every training run; the best is reported")
    parser.add_argument("--quality-steps", type=int, default=0,
                        help="also compare held-out loss of bf16 and fp32 tts-host runs after this many steps")
    parser.add_argument("--out", default=None, help="write all figures here as JSON")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.worker:
        result = WORKERS[options.worker](options)
        result.update({"mode": options.worker, "peak_rss_mb": peak_rss_mb()})
        Path(options.result).write_text(json.dumps(result, indent=2))
        return

    workdir = Path(options.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    presets = [options.preset] + ([] if options.skip_v2 else ["v2"])
    clip_sets = ["short", "long"] if options.clips == "both" else [options.clips]
    paths = prepare(workdir, presets, clip_sets)
    data = paths[clip_sets[-1]]  # the loss check, quality runs and synthesis use the last clip set
    report: dict = {"cpu_count": os.cpu_count()}
    lines = [f"# XTTS fine-tuning benchmark (batch {options.batch_size}, {os.cpu_count()} CPU cores)"]
    tables = [(options.preset, clips, options.steps, options.repeats) for clips in clip_sets]
    tables += [("v2", clip_sets[-1], options.v2_steps, 1)] if "v2" in presets else []
    for preset, clips, steps, repeats in tables:
        rows = best_rounds(TRAINING_MODES, repeats,
                           lambda mode: run_worker(mode, options, paths[preset], paths[clips], steps))
        report[f"{preset}-{clips}"] = rows
        lines += table(rows, f"preset {preset}, {clips} clips, {steps} steps, best of {repeats}")
        print("\n".join(lines[-len(rows) - 2:]), flush=True)
    check = run_worker("loss-check", options, paths[options.preset], data, 1)
    report["loss_check"] = check
    if "error" in check:
        lines.append(f"\nsame-loss check failed to run: {check['error']}")
    else:
        lines.append(f"\nsame-loss check (fp32, coqui's first batch, same weights): coqui {check['coqui_loss']:.6f}, "
                     f"tts-host {check['tts_host_loss']:.6f}, relative difference {check['relative_difference']:.2e} "
                     f"-> {'PASS' if check['same'] else 'FAIL'} (limit 1e-4)")
    if options.quality_steps:
        quality = [run_worker(mode, options, paths[options.preset], data, options.quality_steps, ["--precision", p])
                   for mode, p in (("tts-host", "bf16"), ("tts-host-fp32", "fp32"))]
        report["quality"] = quality
        if all("error" not in q for q in quality):
            bf16, fp32 = quality[0]["heldout_loss"], quality[1]["heldout_loss"]
            lines.append(f"held-out loss after {options.quality_steps} steps: bf16 {bf16:.4f}, fp32 {fp32:.4f} "
                         f"({(bf16 - fp32) / fp32 * 100:+.2f}%; target within 2%)")
    synth = run_worker("synthesis", options, paths[options.preset], data, 1)
    report["synthesis"] = synth
    lines.append(f"\n## synthesis, preset {options.preset} ({synth.get('tokens', '?')} GPT tokens max, "
                 "same text and seed)")
    if "error" in synth:
        lines.append(f"failed: {synth['error']}")
    else:
        lines.append(f"{'run':<18}{'seconds':>9}{'audio s':>9}{'RTF':>7}{'vs coqui':>10}{'first audio s':>15}")
        for name in ("coqui", "tts-host", "tts-host-bf16", "tts-host-stream"):
            entry = synth[name]
            first = f"{entry['first_audio']:.3f}" if entry.get("first_audio") is not None else "-"
            lines.append(f"{name:<18}{entry['seconds']:>9.2f}{entry['audio']:>9.2f}{entry['rtf']:>7.2f}"
                         f"{synth['coqui']['rtf'] / entry['rtf']:>9.2f}x{first:>15}")
    print("\n".join(lines))
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
