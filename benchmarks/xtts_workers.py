"""The fine-tuning workers of ``xtts_finetune.py``: each runs in its own process (``--worker MODE``).

``coqui``/``coqui-threads`` time coqui's GPTTrainer through coqui's Trainer; ``tts-host``,
``tts-host-fp32`` and ``tts-host-lora`` time tts-host's ``finetune`` through the library API and
read back what it stored; ``loss-check`` compares the two losses on one batch. Each returns a
JSON-able dict.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Iterable

COQUI_LR = 5e-6  # coqui's XTTS recipe (tts-host's full fine-tune default too)


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


def tensor_bytes(values: Iterable[Any]) -> int:
    """Bytes of the tensors among ``values`` (anything else counts nothing)."""
    return sum(v.numel() * v.element_size() for v in values if hasattr(v, "element_size"))


def _train_clips(data: str):
    from tts_host.data.dataset import load_prepared

    dataset = load_prepared(data)
    return dataset, dataset.train, dataset.heldout


def coqui_trainer(base: str, data: str, steps: int, batch_size: int, workdir: str, *, restore_threads: bool):
    """GPTTrainer through coqui's Trainer with the base's weights; returns the trainer, model, step stamps, run folder."""
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
        lr=COQUI_LR, lr_scheduler="MultiStepLR", lr_scheduler_params={"milestones": [10**9], "gamma": 0.5},
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


def worker_coqui(options: argparse.Namespace) -> dict:
    """Seconds per step of coqui's Trainer.fit with GPTTrainer (threads as imported, or restored), and the
    bytes of what a voice needs from its checkpoint (the GPT) and of the whole checkpoint coqui saves."""
    import torch

    trainer, model, stamps, out = coqui_trainer(options.base, options.data, options.steps, options.batch_size,
                                                options.workdir, restore_threads=options.worker == "coqui-threads")
    started = time.perf_counter()
    trainer.fit()
    total = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    optimizers = trainer.optimizer if isinstance(trainer.optimizer, list) else [trainer.optimizer]
    optimizer_state = [v for optimizer in optimizers for state in optimizer.state_dict()["state"].values()
                       for v in state.values()]
    return {"steps": len(stamps), "seconds_per_step": step_seconds(stamps), "fit_seconds": total,
            "threads": torch.get_num_threads(), "stored_bytes": tensor_bytes(model.xtts.gpt.state_dict().values()),
            "checkpoint_bytes": tensor_bytes(model.state_dict().values()) + tensor_bytes(optimizer_state)}


def worker_tts_host(options: argparse.Namespace) -> dict:
    """Seconds per step of tts-host's fine-tune (full, or LoRA for ``tts-host-lora``) through the library API,
    its losses, and the bytes it added to the library beyond the base."""
    import torch

    from tts_host.contract import FinetuneRequest
    from tts_host.host import get_host
    from tts_host.speakers.library import Library
    from tts_host.training.devices import pick_device, precision_policy

    home = Path(options.workdir) / f"home-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    stamps: list[float] = []
    precision = options.precision or ("fp32" if options.worker == "tts-host-fp32" else "auto")
    lora = options.worker == "tts-host-lora"
    with Library(home, host=get_host()) as library:
        backend = library.backend("xtts")
        base = library.add_base(backend, options.base, "bench")
        dataset, train, _ = _train_clips(options.data)
        per_epoch = max(1, -(-len(train) // options.batch_size))
        request = FinetuneRequest(
            speaker="bench", data=Path(options.data), base="bench", batch_size=options.batch_size,
            learning_rate=options.lora_lr if lora else None, lora_rank=options.lora_rank if lora else None,
            epochs=-(-options.steps // per_epoch), progress=False,
            on_step=lambda step, total, loss: stamps.append(time.perf_counter()),
            settings={"max_steps": options.steps, "precision": precision, "save_every": 10**9})
        result = backend.finetune(library, request)
        voice = library.voice("bench")
        model = library.model_of(voice)
        base_blobs = {f.sha256 for f in base.files}
        model_files = [f for f in model.files if f.sha256 not in base_blobs]  # the checkpoint beyond the base
        voice_files = [f for f in voice.files if f.sha256 not in base_blobs]  # conditioning, reference clips
    shutil.rmtree(home, ignore_errors=True)
    metrics = result.metrics
    return {"steps": len(stamps), "seconds_per_step": step_seconds(stamps), "threads": torch.get_num_threads(),
            "bf16": precision_policy(precision, pick_device()).name == "bf16",
            "learning_rate": result.checkpoint.training_config["settings"]["learning_rate"],
            "train_loss_first": metrics["train_loss_first"], "train_loss_last": metrics["train_loss_last"],
            "heldout_before": metrics["heldout"]["bench"]["before"],
            "heldout_loss": metrics["heldout"]["bench"]["after"],
            "stored_bytes": sum({f.sha256: f.size for f in model_files + voice_files}.values()),
            "model_bytes": sum({f.sha256: f.size for f in model_files}.values()),
            "stored_files": sorted(f.path for f in model_files + voice_files)}


def worker_loss_check(options: argparse.Namespace) -> dict:
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
