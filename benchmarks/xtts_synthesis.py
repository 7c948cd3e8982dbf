"""The synthesis part of ``xtts_finetune.py``: coqui's ``Xtts.inference`` against tts-host's ``synthesize``.

One worker process (``--worker synthesis``) loads the base both ways and speaks the same text
with the same seed and GPT token budget: coqui in fp32, tts-host in fp32, bf16 and int8
(dynamic int8 of the GPT's linear layers; the HiFi-GAN in bf16 where the CPU computes it
natively: :mod:`tts_host.speech_precision`), each whole and streamed (time to first audio). A
warm-up round (which also quantises, for int8) is followed by ``--synthesis-rounds`` timed
rounds, the runs in turn; each run's best round is reported with the spread (worst minus best).
It also compares int8 speech with fp32 speech: the largest absolute sample difference (with the
model's sampling, and greedy with ``top_k`` 1, where the two GPTs should pick the same codes)
and Resemblyzer's speaker similarity; and the HiFi-GAN alone, fp32 against the way int8 speech
vocodes, on the same latents (seconds, largest difference, similarity).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tts_host.composition import Components
    from tts_host.similarity import SpeakerSimilarity

SYNTH_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank."
RUNS = (("tts-host", "fp32", False), ("tts-host-bf16", "bf16", False), ("tts-host-int8", "int8", False),
        ("tts-host-stream", "fp32", True), ("tts-host-int8-stream", "int8", True))
RATE = 24000  # XTTS speech's sample rate, coqui's and tts-host's
INT8_TARGET = 1.8  # the issue: int8 speech at least 1.8x faster than coqui's fp32 Xtts.inference


def largest_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """Largest absolute difference of two clips over their common length, both lengths, and ``b``'s peak (the scale)."""
    common = min(len(a), len(b))
    return {"largest": float(np.abs(a[:common] - b[:common]).max()) if common else float("nan"),
            "samples": [len(a), len(b)], "peak": float(np.abs(b).max()) if len(b) else float("nan")}


def worker_synthesis(options: argparse.Namespace) -> dict:
    """Seconds (best round, and the spread), audio length and first-audio delay of every run; int8 vs fp32."""
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    from tts_host.contract import SpeakRequest, Speech
    from tts_host.data.dataset import load_prepared
    from tts_host.errors import TTSHostError
    from tts_host.host import get_host
    from tts_host.plugins.xtts.synthesis import clone_conditioning, synthesize
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.speech import audio_token_budget

    train = load_prepared(options.data).train
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

    def speak(precision: str, stream: bool = False, **sampling_options: float) -> tuple[Speech, float]:
        request = SpeakRequest("bench", SYNTH_TEXT, out, stream=stream, precision=precision,
                               sampling=sampling_options)
        started = time.perf_counter()
        return synthesize(components, conditioning, "en", request), time.perf_counter() - started

    results: dict = {"tokens": budget, "rounds": options.synthesis_rounds}
    audio: dict[str, np.ndarray] = {}
    timings: dict[str, list[dict]] = {}
    for round_ in range(1 + options.synthesis_rounds):  # round 0 warms up (and quantises, for int8)
        torch.manual_seed(0)
        started = time.perf_counter()
        audio["coqui"] = coqui.inference(SYNTH_TEXT, "en", latent, speaker, max_new_tokens=budget, **sampling)["wav"]
        timed = {"coqui": {"seconds": time.perf_counter() - started, "audio": len(audio["coqui"]) / RATE}}
        for name, precision, stream in RUNS:
            try:
                speech, seconds = speak(precision, stream)
            except TTSHostError as exc:  # SpeakRequest refuses a precision tts-host does not have yet
                results[name] = {"error": str(exc)}
                continue
            assert speech.sample_rate == RATE
            audio[name] = speech.audio
            timed[name] = {"seconds": seconds, "audio": len(speech.audio) / RATE,
                           "first_audio": speech.first_chunk_seconds}
        for name, entry in timed.items():
            if round_:
                timings.setdefault(name, []).append(entry)
    for name, rounds in timings.items():
        best = min(rounds, key=lambda entry: entry["seconds"])
        results[name] = {**best, "spread": max(entry["seconds"] for entry in rounds) - best["seconds"],
                         "rtf": best["seconds"] / best["audio"] if best["audio"] else float("nan")}
    if "tts-host-int8" in audio:
        similarity = SpeakerSimilarity()
        vectors = {name: similarity.embed(audio[name], RATE) for name in ("coqui", "tts-host", "tts-host-int8")}
        greedy = {precision: speak(precision, top_k=1)[0].audio for precision in ("fp32", "int8")}
        results["int8_vs_fp32"] = {
            "sampled": largest_difference(audio["tts-host-int8"], audio["tts-host"]),
            "greedy": largest_difference(greedy["int8"], greedy["fp32"]),
            "similarity": similarity.similarity(vectors["tts-host-int8"], vectors["tts-host"]),
            "similarity_coqui_vs_fp32": similarity.similarity(vectors["coqui"], vectors["tts-host"])}
        results["vocoder"] = compare_vocoding(components, conditioning, budget, sampling, similarity,
                                              options.synthesis_rounds)
    return results


def compare_vocoding(components: Components, conditioning: dict, budget: int, sampling: dict,
                     similarity: SpeakerSimilarity, rounds: int) -> dict:
    """The HiFi-GAN alone on one utterance's fp32 latents: fp32 against the way int8 speech vocodes it."""
    import torch

    from tts_host.speech_precision import decodes_in_bf16, decoding_autocast

    acoustic, vocoder = components["acoustic_model"], components["vocoder"]
    torch.manual_seed(0)
    tokens = components["text_encoder"].encode(SYNTH_TEXT, "en")
    latents = acoustic.generate(tokens, conditioning, max_new_tokens=budget, **sampling)["latents"]
    features = {"latents": latents, "speaker_embedding": conditioning["speaker_embedding"]}
    contexts = {"fp32": lambda: decoding_autocast("fp32", "cpu"), "int8": lambda: decoding_autocast("int8", "cpu")}
    seconds: dict[str, list[float]] = {name: [] for name in contexts}
    audio: dict[str, np.ndarray] = {}
    for _ in range(1 + rounds):  # the first round warms up; the modes run in turn
        for name, context in contexts.items():
            started = time.perf_counter()
            with context():
                audio[name] = vocoder.vocode(features)
            seconds[name].append(time.perf_counter() - started)
    vectors = {name: similarity.embed(clip, RATE) for name, clip in audio.items()}
    return {"int8_in_bf16": decodes_in_bf16("int8", "cpu"), "audio": len(audio["fp32"]) / RATE,
            "seconds": {name: min(times[1:]) for name, times in seconds.items()},
            "spread": {name: max(times[1:]) - min(times[1:]) for name, times in seconds.items()},
            "difference": largest_difference(audio["int8"], audio["fp32"]),
            "similarity": similarity.similarity(vectors["int8"], vectors["fp32"])}


def synthesis_lines(synth: dict, preset: str) -> list[str]:
    """The synthesis table and the int8 comparison."""
    lines = [f"\n## synthesis, preset {preset} ({synth.get('tokens', '?')} GPT tokens max, same text and seed)"]
    if "error" in synth:
        return lines + [f"failed: {synth['error']}"]
    lines[0] += f", best of {synth.get('rounds', 1)} rounds"
    lines.append(f"{'run':<22}{'seconds':>9}{'spread':>8}{'audio s':>9}{'RTF':>7}{'vs coqui':>10}{'first audio s':>15}")
    coqui_rtf = synth["coqui"]["rtf"]
    for name in ("coqui", *(run[0] for run in RUNS)):
        entry = synth[name]
        if "error" in entry:
            lines.append(f"{name:<22} not run: {entry['error']}")
            continue
        first = f"{entry['first_audio']:.3f}" if entry.get("first_audio") is not None else "-"
        lines.append(f"{name:<22}{entry['seconds']:>9.2f}{entry.get('spread', float('nan')):>8.2f}"
                     f"{entry['audio']:>9.2f}{entry['rtf']:>7.2f}"
                     f"{coqui_rtf / entry['rtf']:>9.2f}x{first:>15}")
    compared = synth.get("int8_vs_fp32")
    if compared:
        speedup = coqui_rtf / synth["tts-host-int8"]["rtf"]
        sampled, greedy = compared["sampled"], compared["greedy"]
        lines += [f"int8 vs coqui fp32: {speedup:.2f}x faster (RTF) (target at least {INT8_TARGET}x faster) "
                  f"-> {'PASS' if speedup >= INT8_TARGET else 'FAIL'}",
                  f"int8 vs fp32, same seed: largest |audio difference| {sampled['largest']:.2e} sampled "
                  f"(fp32 peak {sampled['peak']:.2e}; samples {sampled['samples'][0]} vs {sampled['samples'][1]}), "
                  f"{greedy['largest']:.2e} greedy, top_k 1 (fp32 peak {greedy['peak']:.2e}; samples "
                  f"{greedy['samples'][0]} vs {greedy['samples'][1]}); speaker similarity "
                  f"{compared['similarity']:.4f} (coqui vs tts-host fp32: {compared['similarity_coqui_vs_fp32']:.4f})"]
    vocoding = synth.get("vocoder")
    if vocoding:
        times, spread, difference = vocoding["seconds"], vocoding["spread"], vocoding["difference"]
        lines.append(f"HiFi-GAN alone, {vocoding['audio']:.2f} s of audio from the same fp32 latents: fp32 "
                     f"{times['fp32']:.3f} s (spread {spread['fp32']:.3f}), as int8 speech vocodes "
                     f"({'bf16: this CPU computes bf16 natively' if vocoding['int8_in_bf16'] else 'fp32: no native bf16'}) "
                     f"{times['int8']:.3f} s (spread {spread['int8']:.3f}), {times['fp32'] / times['int8']:.2f}x; "
                     f"largest |difference| {difference['largest']:.2e} (fp32 peak {difference['peak']:.2e}), "
                     f"speaker similarity {vocoding['similarity']:.4f}")
    return lines
