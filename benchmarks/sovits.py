"""SoVITS: seconds per s2 and s1 training step and peak memory, synthesis real-time factor and time to
first audio; side by side with GPT-SoVITS's own classes when a checkout is given; and the regularisers'
effect on held-out losses.

Usage::

    .venv/bin/python benchmarks/sovits.py                          # v2 preset, tts-host alone
    GSV_REPO=/path/to/GPT-SoVITS PYTHONPATH=/path/to/extra-packages \\
        .venv/bin/python benchmarks/sovits.py                      # + upstream's SynthesizerTrn / Text2SemanticDecoder
    .venv/bin/python benchmarks/sovits.py --regularisers           # held-out losses with and without each regulariser

Upstream's modules import ``torchmetrics`` and ``x_transformers`` (install them into a folder named by
PYTHONPATH: ``pip install --target DIR --no-deps torchmetrics lightning-utilities x-transformers einx loguru``).
Both implementations get the same weights (upstream's names, loaded strictly into upstream's modules), the
same batch (espeak-ng speech, its semantic codes and phonemes), AdamW with the same settings, fp32 on the
CPU. Every (implementation, stage) runs in its own process, so its peak resident memory is its own;
the modes run in turn for ``--repeats`` rounds, and the best round and the spread (max - min) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."
MODES = ("tts-host:s2", "tts-host:s1", "tts-host:speak", "upstream:s2", "upstream:s1", "upstream:speak")


def prepare(work: Path, preset: str) -> None:
    """A random base of ``preset``, four espeak-ng clips' items and a reference, written into ``work``."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from tts_host.data.espeak import SENTENCES, VOICES, synthesize
    from tts_host.data import read_audio
    from tts_host.plugins.sovits.base import init_base
    from tts_host.plugins.sovits.components import PhonemeTextEncoder, SemanticCodec

    base = init_base(preset, work / "base", seed=0)
    codec, text = SemanticCodec(base), PhonemeTextEncoder(base)
    tensors, texts = {}, []
    for index, sentence in enumerate(SENTENCES[:4]):
        wav = work / f"clip{index}.wav"
        synthesize(sentence, VOICES["A"], wav)
        audio = read_audio(wav, 32000)
        codes = codec.encode(read_audio(wav, 16000))
        frames = min(len(audio) // 640, 2 * len(codes)) // 2 * 2
        tensors[f"audio{index}"] = torch.from_numpy(audio[: frames * 640].astype(np.float32))
        tensors[f"codes{index}"] = torch.from_numpy(codes[: frames // 2])
        tensors[f"phonemes{index}"] = torch.tensor(text.phonemes(sentence, "en").ids)
        texts.append(sentence)
    save_file(tensors, str(work / "batch.safetensors"))
    (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")


def _items(work: Path):
    from safetensors.torch import load_file

    from tts_host.plugins.sovits.data import Item

    t = load_file(str(work / "batch.safetensors"))
    return [Item(f"clip{i}", "A", t[f"audio{i}"].numpy(), t[f"codes{i}"].numpy(), t[f"phonemes{i}"].tolist())
            for i in range(4)]


def ours(work: Path, stage: str, steps: int) -> list[float]:
    """tts-host's stage steps (s2: GAN with a fresh discriminator; s1) or one synthesis; seconds each."""
    import torch

    from tts_host.plugins.sovits.components import (
        ReferenceSpeakerEncoder, SemanticCodec, SovitsVocoder, TextToSemanticModel)
    from tts_host.plugins.sovits.s2_model import build_discriminator
    from tts_host.plugins.sovits.settings import SovitsSettings
    from tts_host.plugins.sovits.train_s1 import S1Stage
    from tts_host.plugins.sovits.train_s2 import S2Stage
    from tts_host.training.devices import precision_policy
    from tts_host.training.distributed import Distributed

    base, device, items = work / "base", torch.device("cpu"), _items(work)
    settings, precision = SovitsSettings(), precision_policy("fp32", torch.device("cpu"))
    torch.manual_seed(0)
    if stage == "speak":
        return [_speak_ours(work)]
    if stage == "s2":
        runner = S2Stage(SovitsVocoder(base), ReferenceSpeakerEncoder(base), SemanticCodec(base), build_discriminator(),
                         settings, device)
        batch = runner.batch(items)
        for module in runner.trainable():
            module.train()
        step = lambda: runner.train_step(batch, precision, lambda params: None)  # noqa: E731
    else:
        runner = S1Stage(TextToSemanticModel(base), settings, device, Distributed())
        runner.model.train()
        step = lambda: runner.train_step(items, precision, lambda params: None)  # noqa: E731
    return _timed(step, steps)


def _speak_ours(work: Path) -> float:
    """Real-time factor and time to first audio of a zero-shot voice (written to ``speak.json``)."""
    from tts_host.contract import CloneRequest, SpeakRequest
    from tts_host.host import get_host
    from tts_host.speakers import Library

    home = work / "home"
    os.environ["TTS_HOST_HOME"] = str(home)
    host = get_host()
    backend = host.build_backend("sovits")
    with Library(home, host=host) as library:
        if not library.has_voice("ref"):
            library.add_base(backend, work / "base", "bench")
            texts = json.loads((work / "texts.json").read_text(encoding="utf-8"))
            backend.clone(library, library.base("bench"), CloneRequest(
                "ref", [work / "clip0.wav", work / "clip1.wav"], " ".join(texts[:2]), "en"))
        result = backend.speak(library, SpeakRequest("ref", TEXT, work / "ours.wav", stream=True,
                                                     sampling={"max_length": 400}))
    figures = {"rtf": result.real_time_factor, "first_audio": result.first_audio_seconds}
    (work / "speak-ours.json").write_text(json.dumps(figures), encoding="utf-8")
    return result.wall_seconds


def upstream(work: Path, stage: str, steps: int, repo: Path) -> list[float]:
    """The same steps with GPT-SoVITS's ``SynthesizerTrn`` + ``MultiPeriodDiscriminator`` and ``Text2SemanticDecoder``."""
    import torch
    from torch.nn import functional as F

    sys.path[:0] = [str(repo), str(repo / "GPT_SoVITS")]
    from module import commons
    from module.losses import discriminator_loss, feature_loss, generator_loss, kl_loss
    from module.mel_processing import mel_spectrogram_torch, spec_to_mel_torch, spectrogram_torch
    from module.models import MultiPeriodDiscriminator, SynthesizerTrn

    from tts_host.plugins.sovits.modelset import load_weights, read_json

    base, items = work / "base", _items(work)
    s2_config = read_json(base, "s2_config")
    model = {k: v for k, v in s2_config["model"].items() if k not in ("ssl_dim", "codebook_size", "ref_hidden", "ref_bins")}
    torch.manual_seed(0)
    if stage in ("s2", "speak"):
        net_g = SynthesizerTrn(1025, 32, n_speakers=300, **model)
        net_g.load_state_dict({**load_weights(base, "s2_generator"), **load_weights(base, "s2_semantic")}, strict=True)
    if stage == "speak":
        return [_speak_upstream(work, net_g, repo)]
    if stage == "s2":
        net_d = MultiPeriodDiscriminator(False)
        optim_g = torch.optim.AdamW(net_g.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
        optim_d = torch.optim.AdamW(net_d.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
        frames = max(i.frames for i in items)
        y = torch.zeros(len(items), 1, frames * 640)
        ssl = torch.zeros(len(items), 768, frames)
        text = torch.zeros(len(items), max(len(i.phonemes) for i in items), dtype=torch.long)
        for n, item in enumerate(items):
            y[n, 0, : len(item.audio)] = torch.from_numpy(item.audio)
            text[n, : len(item.phonemes)] = torch.tensor(item.phonemes)
        spec = spectrogram_torch(y.squeeze(1), 2048, 32000, 640, 2048)
        lengths = torch.tensor([i.frames for i in items])
        text_lengths = torch.tensor([len(i.phonemes) for i in items])
        net_g.train(), net_d.train()

        def step() -> None:
            y_hat, _, ids_slice, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q), _ = net_g(ssl, spec, lengths, text,
                                                                                         text_lengths)
            mel = spec_to_mel_torch(spec, 2048, 128, 32000, 0.0, None)
            y_mel = commons.slice_segments(mel, ids_slice, 32)
            y_hat_mel = mel_spectrogram_torch(y_hat.squeeze(1), 2048, 128, 32000, 640, 2048, 0.0, None)
            y_real = commons.slice_segments(y, ids_slice * 640, 20480)
            real, fake, _, _ = net_d(y_real, y_hat.detach())
            loss_d = discriminator_loss(real, fake)[0]
            optim_d.zero_grad()
            loss_d.backward()
            optim_d.step()
            real, fake, fmap_r, fmap_g = net_d(y_real, y_hat)
            loss = (F.l1_loss(y_mel, y_hat_mel) * 45 + kl_loss(z_p, logs_q, m_p, logs_p, z_mask)
                    + feature_loss(fmap_r, fmap_g) + generator_loss(fake)[0])
            optim_g.zero_grad()
            loss.backward()
            optim_g.step()
        return _timed(step, steps)
    from AR.models.t2s_model import Text2SemanticDecoder

    s1_config = read_json(base, "s1_config")
    t2s = Text2SemanticDecoder({"model": {k: v for k, v in s1_config["model"].items() if k != "bert_dim"}})
    t2s.load_state_dict(load_weights(base, "s1_weights"), strict=False)
    optimizer = torch.optim.AdamW(t2s.parameters(), 1e-4, betas=(0.9, 0.95), weight_decay=0.01)
    x = torch.zeros(len(items), max(len(i.phonemes) for i in items), dtype=torch.long)
    codes = torch.zeros(len(items), max(len(i.codes) for i in items), dtype=torch.long)
    for n, item in enumerate(items):
        x[n, : len(item.phonemes)] = torch.tensor(item.phonemes)
        codes[n, : len(item.codes)] = torch.from_numpy(item.codes)
    x_lens, y_lens = torch.tensor([len(i.phonemes) for i in items]), torch.tensor([len(i.codes) for i in items])
    bert = torch.zeros(len(items), 1024, x.size(1))
    t2s.train()

    def s1_step() -> None:
        loss, _ = t2s.forward_old(x, x_lens, codes, y_lens, bert)
        optimizer.zero_grad()
        (loss / y_lens.sum()).backward()
        optimizer.step()
    return _timed(s1_step, steps)


def _speak_upstream(work: Path, net_g, repo: Path) -> float:
    """Upstream's inference path on the same reference and text: s1 ``infer_panel_naive`` then s2 ``decode``."""
    import torch
    from AR.models.t2s_model import Text2SemanticDecoder
    from module.mel_processing import spectrogram_torch

    from tts_host.data import read_audio
    from tts_host.plugins.sovits.components import PhonemeTextEncoder, SemanticCodec
    from tts_host.plugins.sovits.modelset import load_weights, read_json

    base = work / "base"
    texts = json.loads((work / "texts.json").read_text(encoding="utf-8"))
    s1_config = read_json(base, "s1_config")
    t2s = Text2SemanticDecoder({"model": {k: v for k, v in s1_config["model"].items() if k != "bert_dim"}})
    t2s.load_state_dict(load_weights(base, "s1_weights"), strict=False)
    t2s.eval(), net_g.eval()
    codec, text = SemanticCodec(base), PhonemeTextEncoder(base)
    import numpy as np

    ref32 = np.concatenate([read_audio(work / f"clip{i}.wav", 32000) for i in (0, 1)])
    ref16 = np.concatenate([read_audio(work / f"clip{i}.wav", 16000) for i in (0, 1)] + [np.zeros(4800, np.float32)])
    prompt = torch.from_numpy(codec.encode(ref16)).unsqueeze(0)
    refer = spectrogram_torch(torch.from_numpy(ref32).unsqueeze(0), 2048, 32000, 640, 2048)
    reference = text.phonemes(" ".join(texts[:2]), "en").ids
    started, first, samples = time.perf_counter(), None, 0
    with torch.no_grad():
        for sentence in text.sentences(TEXT, "en"):
            target = text.phonemes(sentence, "en").ids
            ids = torch.tensor([reference + target])
            bert = torch.zeros(1, 1024, ids.size(1))
            for y, _ in t2s.infer_panel_naive(ids, torch.tensor([ids.size(1)]), prompt, bert, top_k=15, top_p=1,
                                              temperature=1, early_stop_num=400):
                new = y[:, prompt.size(1):].unsqueeze(0)
            audio = net_g.decode(new, torch.tensor([target]), refer)
            samples += audio.size(-1)
            first = first or time.perf_counter() - started
    wall = time.perf_counter() - started
    (work / "speak-upstream.json").write_text(json.dumps({"rtf": wall / (samples / 32000), "first_audio": first}),
                                             encoding="utf-8")
    return wall


def _timed(step, steps: int) -> list[float]:
    step()  # warm-up: optimiser state, allocator
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def child(work: Path, mode: str, steps: int) -> None:
    """Run one mode in this process and print its figures as one JSON line."""
    impl, stage = mode.split(":")
    times = ours(work, stage, steps) if impl == "tts-host" else upstream(work, stage, steps, Path(os.environ["GSV_REPO"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"seconds": statistics.median(times), "peak_mb": round(peak)}
    speak = work / f"speak-{'ours' if impl == 'tts-host' else 'upstream'}.json"
    if stage == "speak" and speak.is_file():
        figures.update(json.loads(speak.read_text(encoding="utf-8")))
    print("RESULT " + json.dumps(figures))


def compare(args: argparse.Namespace) -> dict:
    """Every mode, ``repeats`` rounds in turn, each in its own process; best round and spread per mode."""
    work = Path(tempfile.mkdtemp(prefix="sovits-bench-"))
    prepare(work, args.preset)
    modes = [m for m in MODES if m.startswith("tts-host") or os.environ.get("GSV_REPO")]
    rounds: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode in modes:
            run = subprocess.run([sys.executable, __file__, "--child", mode, "--work", str(work), "--steps",
                                  str(args.steps)], capture_output=True, text=True, env={**os.environ})
            line = next((l for l in run.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{mode} failed:\n{run.stderr[-3000:]}")
            rounds[mode].append(json.loads(line[len("RESULT "):]))
    report = {}
    for mode, results in rounds.items():
        seconds = [r["seconds"] for r in results]
        best = min(results, key=lambda r: r["seconds"])
        report[mode] = {**best, "spread": max(seconds) - min(seconds)}
        print(f"{mode:16s} {best['seconds']:.3f} s (spread {report[mode]['spread']:.3f}), peak {best['peak_mb']} MB"
              + (f", real-time factor {best['rtf']:.2f}, first audio {best['first_audio']:.2f} s" if "rtf" in best else ""))
    for stage in ("s2", "s1", "speak"):
        if f"upstream:{stage}" in report:
            ours_, theirs = report[f"tts-host:{stage}"], report[f"upstream:{stage}"]
            print(f"{stage}: upstream / tts-host time {theirs['seconds'] / ours_['seconds']:.2f}x, "
                  f"memory {theirs['peak_mb'] / ours_['peak_mb']:.2f}x")
    return report


REGULARISERS = {"none": {}, "ema_decay": {"ema_decay": 0.99}, "spec_augment": {"spec_augment": True},
                "mixup_alpha": {"mixup_alpha": 0.4}, "layer_drop": {"layer_drop": 0.2}, "grad_clip": {"grad_clip": 1.0}}


def regularisers(args: argparse.Namespace) -> dict:
    """Held-out losses (s1 tokens, s2 mel) after the same fine-tune with and without each regulariser."""
    from tts_host.contract import FinetuneRequest
    from tts_host.data.espeak import SENTENCES, VOICES, speak_folder
    from tts_host.host import get_host
    from tts_host.speakers import Library

    work = Path(tempfile.mkdtemp(prefix="sovits-reg-"))
    data = speak_folder(VOICES["A"], work / "clips", SENTENCES[:16])
    table = {}
    for name, setting in REGULARISERS.items():
        rows = []
        for seed in range(args.repeats):
            home = work / f"{name}-{seed}"
            os.environ["TTS_HOST_HOME"] = str(home)
            host = get_host()
            backend = host.build_backend("sovits")
            with Library(home, host=host) as library:
                from tts_host.bases import init_base

                init_base(library, backend, "tiny", "tiny")
                config = work / f"{name}.yaml"
                config.write_text("finetune:\n" + "".join(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}\n"
                                  for k, v in {"s2_epochs": 4, "s1_epochs": 10, "batch_size": 4, "segment_frames": 16,
                                               "s2_gan": False, "s1_learning_rate": 0.002, "seed": seed,
                                               **setting}.items()), encoding="utf-8")
                result = backend.finetune(library, FinetuneRequest("A", data, base="tiny", config=config,
                                                                   progress=False))
            rows.append((result.metrics["heldout"]["A"]["after"], result.metrics["stages"]["s2"]["heldout"]["A"]["after"]))
        table[name] = {"s1": statistics.mean(r[0] for r in rows), "s2": statistics.mean(r[1] for r in rows),
                       "s1_spread": max(r[0] for r in rows) - min(r[0] for r in rows),
                       "s2_spread": max(r[1] for r in rows) - min(r[1] for r in rows)}
        print(f"| {name:12s} | {table[name]['s1']:.4f} (±{table[name]['s1_spread'] / 2:.4f}) | "
              f"{table[name]['s2']:.4f} (±{table[name]['s2_spread'] / 2:.4f}) |", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v2")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode and round (after one warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (timing) or seeds (--regularisers)")
    parser.add_argument("--regularisers", action="store_true", help="the held-out table of the regularisers")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.work, args.child, args.steps)
        return
    report = regularisers(args) if args.regularisers else compare(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
