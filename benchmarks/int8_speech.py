"""XTTS int8 speech against fp32: how far the int8 GPT's latents are from fp32's, and how fast each speaks.

Usage::

    .venv/bin/python benchmarks/int8_speech.py                       # tiny and small presets
    .venv/bin/python benchmarks/int8_speech.py --preset small --tokens 150 --out int8.json

For each preset a base is built offline (random weights, seed 0). Latents: the GPT's latents for
fixed text tokens, audio codes and conditioning (no sampling), fp32 against the int8 copy
(:func:`tts_host.quantisation.int8_copy`): the largest absolute difference, and that over the
largest fp32 value. Speed: the GPT samples exactly ``--tokens`` codes (the stop token held back
by ``min_new_tokens``) at each precision, best of ``--repeats`` (wall and this process' CPU seconds:
CPU time stays comparable when other jobs share the cores), then the HiFi-GAN vocodes them (after a
warm-up, best of ``--repeats``) as each precision's speech does (int8: in bf16 on CPUs that compute it natively); RTF is
(sampling + vocoding) / seconds of audio, as ``speak`` reports it. Building the
int8 copy is timed on its own (it happens once per loaded model). Figures go to stdout and ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def fixed_inputs(acoustic: Any, text_tokens: int = 40, codes: int = 60) -> tuple[Any, Any, Any]:
    """Seeded text tokens, audio codes and a conditioning latent fitting ``acoustic``'s GPT."""
    import torch

    generator = torch.Generator().manual_seed(0)
    args = acoustic.config["model_args"]
    audio_codes = int(args["gpt_num_audio_tokens"]) - 2
    tokens = torch.randint(5, 60, (1, text_tokens), generator=generator, dtype=torch.int32)
    code_ids = torch.randint(0, audio_codes, (1, codes), generator=generator)
    latent = torch.randn(1, 32, int(args["gpt_n_model_channels"]), generator=generator)
    return tokens, code_ids, latent


def latent_difference(acoustic: Any) -> dict[str, float]:
    """The largest absolute difference of the int8 GPT's latents from fp32's on fixed inputs (and relative)."""
    import torch

    tokens, codes, latent = fixed_inputs(acoustic)
    lengths = (torch.tensor([tokens.shape[-1]]), torch.tensor([codes.shape[-1] * acoustic.code_stride_len]))
    outputs = []
    for precision in ("fp32", "int8"):
        with torch.inference_mode():
            outputs.append(acoustic.inference_gpt(precision)(tokens, lengths[0], codes, lengths[1], cond_latents=latent,
                                                             return_attentions=False, return_latent=True))
    largest = float((outputs[0] - outputs[1]).abs().max())
    return {"max_abs_latent_difference": largest, "relative": largest / float(outputs[0].abs().max())}


def speed(acoustic: Any, vocoder: Any, tokens: int, repeats: int) -> dict[str, Any]:
    """Seconds to sample ``tokens`` codes at each precision (best of ``repeats``), vocoding, and the RTFs."""
    import numpy as np
    import torch

    from tts_host.speech_precision import decodes_in_bf16, decoding_autocast

    text, _, latent = fixed_inputs(acoustic)
    conditioning = {"gpt_cond_latent": latent.numpy()}
    result: dict[str, Any] = {}
    latents = None
    for precision in ("fp32", "int8"):
        best, best_cpu = float("inf"), float("inf")
        for repeat in range(repeats):
            torch.manual_seed(repeat)
            started, cpu = time.perf_counter(), time.process_time()
            out = acoustic.generate(text.numpy()[0], conditioning, precision=precision, max_new_tokens=tokens,
                                    min_new_tokens=tokens)
            best, best_cpu = min(best, time.perf_counter() - started), min(best_cpu, time.process_time() - cpu)
            if len(out["codes"]) != tokens:
                raise RuntimeError(f"{precision}: sampled {len(out['codes'])} codes, not {tokens}")
        latents = out["latents"] if latents is None else latents
        result[f"{precision}_gpt_seconds"] = round(best, 3)
        result[f"{precision}_gpt_cpu_seconds"] = round(best_cpu, 3)  # comparable when other jobs share the cores
    speaker = np.random.default_rng(0).standard_normal((1, 512, 1)).astype(np.float32)
    features = {"latents": latents, "speaker_embedding": speaker}
    vocoder.vocode(features)  # warm-up: the first call's set-up is no precision's cost
    for precision in ("fp32", "int8"):  # each vocoded as its speech vocodes (int8: bf16 where it is native)
        best = float("inf")
        for _ in range(repeats):
            with decoding_autocast(precision, "cpu"):
                started = time.perf_counter()
                audio = vocoder.vocode(features)
                best = min(best, time.perf_counter() - started)
        result[f"{precision}_vocoder_seconds"] = round(best, 3)
    seconds = len(audio) / vocoder.sample_rate
    result.update(audio_seconds=round(seconds, 2), int8_vocodes_in_bf16=decodes_in_bf16("int8", "cpu"))
    for precision in ("fp32", "int8"):
        vocode = result[f"{precision}_vocoder_seconds"]
        result[f"{precision}_rtf"] = round((result[f"{precision}_gpt_seconds"] + vocode) / seconds, 3)
        result[f"{precision}_gpt_rtf"] = round(result[f"{precision}_gpt_seconds"] / seconds, 3)
    result["gpt_speedup"] = round(result["fp32_gpt_seconds"] / result["int8_gpt_seconds"], 2)
    return result


def measure(preset: str, *, tokens: int = 100, repeats: int = 2, folder: Path | None = None) -> dict[str, Any]:
    """Latent difference and speed of int8 against fp32 for XTTS preset ``preset`` (a base built in ``folder``)."""
    import torch

    from tts_host.host import get_host
    from tts_host.plugins.xtts.base import init_base

    with tempfile.TemporaryDirectory(prefix="tts-host-int8-") as tmp:
        base = init_base(preset, Path(folder or tmp) / f"xtts-{preset}", seed=0)
        components = get_host().components_for("xtts", base)
        acoustic, vocoder = components["acoustic_model"], components["vocoder"]
        started = time.perf_counter()
        acoustic.inference_gpt("int8")
        figures = {"preset": preset, "threads": torch.get_num_threads(), "tokens": tokens,
                   "int8_copy_seconds": round(time.perf_counter() - started, 3), **latent_difference(acoustic)}
        figures.update(speed(acoustic, vocoder, tokens, repeats))
    return figures


def main() -> None:
    """Measure each ``--preset`` and print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="XTTS preset (repeatable; default: tiny and small)")
    parser.add_argument("--tokens", type=int, default=100, help="audio codes sampled per timing")
    parser.add_argument("--repeats", type=int, default=2, help="timings per precision (the best counts)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    options = parser.parse_args()
    results = [measure(p, tokens=options.tokens, repeats=options.repeats) for p in options.preset or ["tiny", "small"]]
    for figures in results:
        print(json.dumps(figures))
    if options.out:
        options.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
