"""Llasa: training throughput against a plain transformers Trainer, generation with and without
the KV cache, and codec encoding throughput.

Usage::

    .venv/bin/python benchmarks/llasa.py                     # small preset, 30 steps, 200 generated tokens
    .venv/bin/python benchmarks/llasa.py --preset tiny --steps 20

Both trainers get the same rows (espeak-ng speech through tts-host's dataset pipeline and the
X-Codec-2.0 codes of the preset's codec), the same initial weights, batch size, learning rate,
cosine schedule with warm-up, fp32, number of optimizer steps and batch order. Training tokens/s counts
non-padding tokens over the steps after the first two (optimizer-state allocation), from
step-end timestamps, per wall second and per CPU second of the process (comparable when other
jobs share the cores); each trainer runs ``--repeats`` times, alternating, and its best run counts. Generation samples a fixed number of speech tokens (the end token is
held back) with and without the KV cache. Codec throughput is seconds of audio encoded per
second of wall time, for the preset's codec. Figures go to stdout and ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tts_host.data.espeak import SENTENCES, VOICES, speak_folder

ROOT = Path(__file__).resolve().parent.parent


def now() -> tuple[float, float]:
    """(wall clock, this process' CPU time): CPU time stays comparable when other jobs share the cores."""
    return time.perf_counter(), time.process_time()


def step_rates(stamps: list[tuple[float, float]], tokens: list[float]) -> dict:
    """Tokens per wall second and per CPU second over the steps after the first two."""
    counted = sum(tokens[2:len(stamps)])
    wall, cpu = stamps[-1][0] - stamps[1][0], stamps[-1][1] - stamps[1][1]
    return {"tokens_per_second": round(counted / wall, 1), "tokens_per_cpu_second": round(counted / cpu, 1)}


def batch_order(count: int, batch: int, steps: int) -> list[int]:
    """Row indices in the order tts-host's seeded sampler visits them, ``steps`` batches long."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(list(range(count)), num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    order: list[int] = []
    epoch = 0
    while len(order) < steps * batch:
        sampler.set_epoch(epoch)
        indices = list(sampler)
        order += indices[: len(indices) // batch * batch]
        epoch += 1
    return order[: steps * batch]


def bench_codec(codec, clips) -> dict:
    """Seconds of audio encoded per wall second, one clip at a time."""
    audio = [clip.read(16000) for clip in clips]
    codec.encode(audio[0])  # warm-up
    started = time.perf_counter()
    for item in audio:
        codec.encode(item)
    wall = time.perf_counter() - started
    seconds = sum(len(a) for a in audio) / 16000
    return {"audio_seconds": round(seconds, 2), "wall_seconds": round(wall, 3),
            "audio_seconds_per_second": round(seconds / wall, 2)}


def bench_ours(base: Path, rows, steps: int, batch: int, lr: float, pad: int, work: Path) -> dict:
    """tts-host's loop (``finetune``) on the rows; returns tokens/s and the losses."""
    from tts_host.plugins.llasa.lora import load_lm
    from tts_host.plugins.llasa.train import FinetuneSettings, finetune

    stamps: list[tuple[float, float]] = []
    settings = FinetuneSettings(learning_rate=lr, batch_size=batch, max_steps=steps, epochs=10_000,
                                precision="fp32", seed=0)
    model = load_lm(base / "model")
    result = finetune(model, rows, work, settings, pad_id=pad,
                      on_step=lambda step, total, loss: stamps.append(now()))
    # The loop draws batches from a seeded DistributedSampler: recount the tokens of the same batches.
    per_step = result.tokens / max(result.steps, 1)
    return {**step_rates(stamps, [per_step] * len(stamps)), "first_loss": round(result.losses[0], 4), "last_loss": round(result.losses[-1], 4)}


def bench_trainer(base: Path, rows, steps: int, batch: int, lr: float, pad: int, work: Path) -> dict:
    """A plain transformers Trainer on the same rows, batch, schedule and steps."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from tts_host.plugins.llasa.lora import load_lm
    from tts_host.plugins.llasa.train import collate

    stamps: list[tuple[float, float]] = []
    tokens: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(now())

    def collator(items):
        batch_rows = [rows[item["index"]] for item in items]
        tokens.append(sum(len(r.input_ids) for r in batch_rows))
        return collate(batch_rows, pad)

    arguments = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=batch, max_steps=steps, learning_rate=lr,
        lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0, max_grad_norm=1.0, logging_steps=10_000,
        save_strategy="no", report_to=[], seed=0, use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    class SameOrder(Trainer):
        """The Trainer, fed the batches in tts-host's order so both see the same padding."""

        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(self.train_dataset)

    model = load_lm(base / "model")
    trainer = SameOrder(model=model, args=arguments, train_dataset=[{"index": i} for i in batch_order(len(rows), batch, steps)],
                        data_collator=collator, callbacks=[Stamp()])
    output = trainer.train()
    return {**step_rates(stamps, tokens), "train_loss_mean": round(output.training_loss, 4)}


def bench_generation(base: Path, layout, tokenizer, new_tokens: int) -> dict:
    """Speech tokens/s with and without the KV cache (the end token held back so lengths match)."""
    import torch

    from tts_host.plugins.llasa.generate import speech_only_processor
    from tts_host.plugins.llasa.lora import load_lm
    from tts_host.plugins.llasa.prompts import prompt_ids

    model = load_lm(base / "model").eval()
    prompt = torch.tensor([prompt_ids(tokenizer, layout, SENTENCES[0])])
    figures = {}
    for cache in (True, False):
        torch.manual_seed(0)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True, temperature=0.8,
                                 top_p=1.0, top_k=50, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
                                 use_cache=cache, eos_token_id=layout.speech_end_id, pad_token_id=layout.speech_end_id,
                                 logits_processor=[speech_only_processor(layout)])
        wall = time.perf_counter() - started
        figures["with_cache" if cache else "without_cache"] = round((out.shape[1] - prompt.shape[1]) / wall, 1)
    figures["kv_cache_speedup"] = round(figures["with_cache"] / figures["without_cache"], 2)
    return figures


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="Training runs of each trainer (best kept).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures here as JSON.")
    args = parser.parse_args()

    import torch

    from tts_host.data import FeatureCache, prepare_dataset
    from tts_host.hashing import sha256_file
    from tts_host.host import get_host
    from tts_host.hf import quiet_transformers
    from tts_host.plugins.llasa.base import init_base
    from tts_host.plugins.llasa.data import dataset_rows

    quiet_transformers()
    work = Path(tempfile.mkdtemp(prefix="llasa-bench-"))
    try:
        base = init_base(args.preset, work / "base")
        data = prepare_dataset(speak_folder(VOICES["A"], work / "speech", SENTENCES[:12]), work / "data", "A", 16000)
        components = get_host().components_for("llasa", base)
        codec = components["codec"]
        codec_figures = bench_codec(codec, data.clips)
        text_encoder = components["text_encoder"]
        tokenizer, layout = text_encoder.tokenizer, text_encoder.layout
        codec_sha256, _ = sha256_file(base / "codec" / "model.safetensors")
        rows, _ = dataset_rows(tokenizer, layout, data.clips, codec_sha256, max_length=2048, codec=lambda: codec,
                               speaker="A", cache=FeatureCache(work / "features"))
        pad = tokenizer.pad_token_id
        runs: dict[str, list[dict]] = {"ours": [], "plain": []}
        for repeat in range(args.repeats):  # alternate, so a burst of load elsewhere hits both
            runs["ours"].append(bench_ours(base, rows, args.steps, args.batch_size, args.lr, pad,
                                           work / f"ours-{repeat}"))
            runs["plain"].append(bench_trainer(base, rows, args.steps, args.batch_size, args.lr, pad,
                                               work / f"trainer-{repeat}"))
        ours, plain = (max(runs[key], key=lambda r: r["tokens_per_cpu_second"]) for key in ("ours", "plain"))
        generation = bench_generation(base, layout, tokenizer, args.new_tokens)
        figures = {
            "preset": args.preset, "threads": torch.get_num_threads(), "rows": len(rows),
            "mean_row_tokens": round(statistics.mean(len(r.input_ids) for r in rows), 1),
            "steps": args.steps, "batch_size": args.batch_size,
            "training": {"tts_host": ours, "transformers_trainer": plain,
                         "ratio": round(ours["tokens_per_second"] / plain["tokens_per_second"], 2),
                         "cpu_ratio": round(ours["tokens_per_cpu_second"] / plain["tokens_per_cpu_second"], 2)},
            "generation_tokens_per_second": generation,
            "codec_encode": codec_figures,
        }
        print(json.dumps(figures, indent=1))
        print(f"training tokens/s: tts-host {ours['tokens_per_second']} vs Trainer {plain['tokens_per_second']} "
              f"= {figures['training']['ratio']}x wall, {figures['training']['cpu_ratio']}x per CPU second "
              f"(target >= 1.0x)")
        print(f"generation tokens/s: {generation['with_cache']} with KV cache, {generation['without_cache']} without "
              f"({generation['kv_cache_speedup']}x)")
        print(f"codec encode: {codec_figures['audio_seconds_per_second']} s of audio per second")
        if args.out:
            args.out.write_text(json.dumps(figures, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
