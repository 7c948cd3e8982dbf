"""`tts-host serve` under load, and streaming that costs what it plays.

Usage::

    .venv/bin/python benchmarks/serve.py                 # tiny random SoVITS and XTTS voices, 3 rounds

1. **Concurrency**: 1, 4 and 8 clients (the official `openai` client, each in its own thread) each send
   `--requests` speech requests (pcm, streamed) to a local server (2 workers, queue 16); requests per
   second, p50/p95 latency and time to first byte, against the same synthesis run in-process, one request
   after another, as the floor.
2. **Streaming**: a ~20-second utterance from a tiny XTTS voice (its random GPT made never to sample the
   stop code, so it runs to the text's budget), total time one-shot vs streamed with the windowed decoding
   (`tts_host.streaming`) vs streamed the old way (the vocoder re-run over every latent so far at each chunk, as coqui's
   `inference_stream` does), and the time to first audio.

Modes run in turn for `--repeats` rounds; the best round and the spread (max - min) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TEXT = "The quick brown fox jumps over the lazy dog."
# 122 characters: a budget of about 20 s of speech (tts_host.speech.speech_seconds_limit)
LONG_TEXT = ("Every morning the baker opens the shop before sunrise and sells warm bread to the people of the town "
             "on their way to work.")


def library(work: Path) -> Path:
    """A library with tiny SoVITS and XTTS bases and a zero-shot voice on each ('sov', 'xt')."""
    import numpy as np
    import soundfile as sf

    from tts_host.cli.main import main
    from tts_host.data.espeak import SENTENCES, VOICES, synthesize

    home = work / "home"
    os.environ["TTS_HOST_HOME"] = str(home)
    clips = [synthesize(SENTENCES[i], VOICES["A"], work / f"a{i}.wav") for i in range(2)]
    ref = work / "ref.wav"
    audio = [sf.read(c, dtype="float32") for c in clips]
    sf.write(ref, np.concatenate([a for a, _ in audio]), audio[0][1])
    for args in (["base", "init", "sovits", "--preset", "tiny"], ["base", "init", "xtts", "--preset", "tiny"],
                 ["voices", "add", "sov", "--backend", "sovits", "--ref", str(ref), "--ref-text",
                  " ".join(SENTENCES[:2]), "--language", "en"],
                 ["voices", "add", "xt", "--backend", "xtts", "--ref", str(ref), "--language", "en"]):
        try:
            main(args)
        except SystemExit as exc:
            if exc.code:
                raise
    return home


def concurrency(home: Path, clients: int, requests: int) -> dict:
    """Requests per second, latency and time to first byte for ``clients`` parallel openai clients."""
    import socket

    import uvicorn
    from openai import OpenAI

    from tts_host.host import get_host
    from tts_host.serve.app import create_app
    from tts_host.serve.service import SpeechService

    service = SpeechService(home, get_host(), workers=2, queue=16)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    latencies, first_bytes = [], []

    def client(_: int) -> None:
        api = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", max_retries=0, timeout=600)
        for _ in range(requests):
            started = time.perf_counter()
            first = None
            with api.audio.speech.with_streaming_response.create(model="tts-1", voice="sov", input=TEXT,
                                                                 response_format="pcm") as response:
                for _chunk in response.iter_bytes():
                    first = first or time.perf_counter() - started
            latencies.append(time.perf_counter() - started)
            first_bytes.append(first)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
    finally:
        wall = time.perf_counter() - started
        server.should_exit = True
        thread.join()
        service.close()
    latencies.sort()
    return {"requests_per_second": len(latencies) / wall, "p50": statistics.median(latencies),
            "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            "first_byte_p50": statistics.median(first_bytes)}


def in_process_floor(home: Path, requests: int) -> dict:
    """The same synthesis without HTTP, one request after another (models loaded once)."""
    import threading as _threading

    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.serve.service import SpeechService

    service = SpeechService(home, get_host(), workers=1, queue=0)
    try:
        service.submit(SpeakRequest("sov", TEXT, Path(os.devnull)), _threading.Event()).result()  # load once
        latencies = []
        started = time.perf_counter()
        for _ in range(requests):
            begun = time.perf_counter()
            service.submit(SpeakRequest("sov", TEXT, Path(os.devnull)), _threading.Event()).result()
            latencies.append(time.perf_counter() - begun)
        wall = time.perf_counter() - started
    finally:
        service.close()
    return {"requests_per_second": requests / wall, "p50": statistics.median(latencies)}


def never_stop(token: int):
    """A forward hook for an output head: ``token`` (the stop code) never scores above -inf."""
    def hook(_module, _inputs, output):
        output[..., token] = float("-inf")
        return output

    return hook


def streaming(home: Path) -> dict:
    """One-shot vs windowed streaming vs re-decode-everything streaming, on the tiny XTTS voice."""
    import numpy as np

    from tts_host.contract import SpeakRequest
    from tts_host.host import get_host
    from tts_host.plugins.xtts import synthesis as xtts_synthesis
    from tts_host.speakers import Library
    from tts_host.synthesis import built_components, plan_speech

    host = get_host()
    backend = host.build_backend("xtts")
    figures = {}
    with Library(home, host=host) as lib:
        plan = plan_speech(backend, lib, SpeakRequest("xt", LONG_TEXT, Path(os.devnull)))
        with lib.materialised(plan.model) as folder:
            components = built_components(backend, folder, plan.chosen)
            gpt = components["acoustic_model"].gpt
            gpt.mel_head.register_forward_hook(never_stop(gpt.stop_audio_token))  # runs to the text's budget

            def run(stream: bool) -> tuple[float, float | None, float]:
                started = time.perf_counter()
                speech = backend.synthesize(components, plan.conditioning, plan.voice,
                                            SpeakRequest("xt", LONG_TEXT, Path(os.devnull), stream=stream))
                return time.perf_counter() - started, speech.first_chunk_seconds, len(speech.audio) / speech.sample_rate

            figures["one_shot"], _, figures["seconds_of_speech"] = run(False)
            figures["windowed"], figures["windowed_first_audio"], _ = run(True)
            original = xtts_synthesis.stream_audio

            def redecode_all(chunks, vocode, position, autocast=None):  # coqui's inference_stream: all so far
                frames, written = None, 0
                for new in chunks:
                    frames = new if frames is None else np.concatenate([frames, new], axis=1)
                    audio = vocode(frames)
                    yield np.asarray(audio[written:], dtype=np.float32)
                    written = len(audio)

            xtts_synthesis.stream_audio = redecode_all
            try:
                figures["redecode_all"], figures["redecode_first_audio"], _ = run(True)
            finally:
                xtts_synthesis.stream_audio = original
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    home = library(work)
    rounds: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        rounds.setdefault("in-process", []).append(in_process_floor(home, args.requests))
        for clients in (1, 4, 8):
            rounds.setdefault(f"{clients} clients", []).append(concurrency(home, clients, args.requests))
        rounds.setdefault("streaming", []).append(streaming(home))
    report = {}
    for mode, results in rounds.items():
        key = "one_shot" if mode == "streaming" else "p50"
        best = min(results, key=lambda r: r[key])
        spread = max(r[key] for r in results) - min(r[key] for r in results)
        report[mode] = {**best, "spread": spread}
        print(mode, json.dumps({k: round(v, 3) for k, v in report[mode].items()}))
    s = report["streaming"]
    print(f"streamed / one-shot: windowed {s['windowed'] / s['one_shot']:.2f}x, "
          f"re-decode everything {s['redecode_all'] / s['one_shot']:.2f}x ({s['seconds_of_speech']:.1f} s of speech)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
