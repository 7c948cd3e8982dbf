"""The synthesis part of ``xtts_finetune.py``: coqui's ``Xtts.inference`` against tts-host's ``synthesize``.

One worker process (``--worker synthesis``) loads the base both ways and speaks the same text
with the same seed and GPT token budget: coqui in fp32, tts-host in fp32, bf16 and int8
(dynamic int8 of the GPT's linear layers), each whole and streamed (time to first audio). It
also compares int8 speech with fp32 speech: the largest absolute sample difference (with the
model's sampling, and greedy with ``top_k`` 1, where the two GPTs should pick the same codes)
and Resemblyzer's speaker similarity.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

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
    """Seconds, audio length and first-audio delay of every run (each run's second, warm call); int8 vs fp32."""
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

    results: dict = {"tokens": budget}
    audio: dict[str, np.ndarray] = {}
    for _ in range(2):  # the first call of each run warms up (and quantises, for int8); the second is reported
        torch.manual_seed(0)
        started = time.perf_counter()
        audio["coqui"] = coqui.inference(SYNTH_TEXT, "en", latent, speaker, max_new_tokens=budget, **sampling)["wav"]
        results["coqui"] = {"seconds": time.perf_counter() - started, "audio": len(audio["coqui"]) / RATE}
        for name, precision, stream in RUNS:
            try:
                speech, seconds = speak(precision, stream)
            except TTSHostError as exc:  # SpeakRequest refuses a precision tts-host does not have yet
                results[name] = {"error": str(exc)}
                continue
            assert speech.sample_rate == RATE
            audio[name] = speech.audio
            results[name] = {"seconds": seconds, "audio": len(speech.audio) / RATE,
                             "first_audio": speech.first_chunk_seconds}
    for entry in results.values():
        if isinstance(entry, dict) and "seconds" in entry:
            entry["rtf"] = entry["seconds"] / entry["audio"] if entry["audio"] else float("nan")
    if "tts-host-int8" in audio:
        similarity = SpeakerSimilarity()
        vectors = {name: similarity.embed(audio[name], RATE) for name in ("coqui", "tts-host", "tts-host-int8")}
        greedy = {precision: speak(precision, top_k=1)[0].audio for precision in ("fp32", "int8")}
        results["int8_vs_fp32"] = {
            "sampled": largest_difference(audio["tts-host-int8"], audio["tts-host"]),
            "greedy": largest_difference(greedy["int8"], greedy["fp32"]),
            "similarity": similarity.similarity(vectors["tts-host-int8"], vectors["tts-host"]),
            "similarity_coqui_vs_fp32": similarity.similarity(vectors["coqui"], vectors["tts-host"])}
    return results


def synthesis_lines(synth: dict, preset: str) -> list[str]:
    """The synthesis table and the int8 comparison."""
    lines = [f"\n## synthesis, preset {preset} ({synth.get('tokens', '?')} GPT tokens max, same text and seed)"]
    if "error" in synth:
        return lines + [f"failed: {synth['error']}"]
    lines.append(f"{'run':<22}{'seconds':>9}{'audio s':>9}{'RTF':>7}{'vs coqui':>10}{'first audio s':>15}")
    coqui_rtf = synth["coqui"]["rtf"]
    for name in ("coqui", *(run[0] for run in RUNS)):
        entry = synth[name]
        if "error" in entry:
            lines.append(f"{name:<22} not run: {entry['error']}")
            continue
        first = f"{entry['first_audio']:.3f}" if entry.get("first_audio") is not None else "-"
        lines.append(f"{name:<22}{entry['seconds']:>9.2f}{entry['audio']:>9.2f}{entry['rtf']:>7.2f}"
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
    return lines
