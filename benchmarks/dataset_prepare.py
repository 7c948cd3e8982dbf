"""Dataset preparation throughput: seconds of audio prepared per second of wall time.

Builds about ten minutes of real espeak-ng speech (three voices: long recordings with pauses,
to be sliced, plus short transcribed clips), then times `prepare_dataset` cold (empty output
folder) with one worker and with one worker per core, warm (a re-run on unchanged input), and
the feature cache cold and warm (log-mel statistics of every clip). Target: at least 50x real
time cold on 2 cores; the warm re-run should take well under a second.

    python benchmarks/dataset_prepare.py [--minutes 10] [--sample-rate 22050] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tts_host.data import FeatureCache, prepare_dataset, producer_id
from tts_host.data.espeak import SENTENCES, VOICES, long_recording, synthesize


def build_source(folder: Path, minutes: float) -> float:
    """Write ~``minutes`` of speech into ``folder``; returns its total duration in seconds."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    total, index = 0.0, 0
    voices = [VOICES[name] for name in "ABC"]
    while total < minutes * 60:
        voice = voices[index % len(voices)]
        if index % 2 == 0:
            sentences = [SENTENCES[(index + k) % len(SENTENCES)] for k in range(12)]
            path = long_recording(voice, folder / f"long_{index:03d}.wav", sentences, pause_s=0.7)
        else:
            for k in range(6):
                text = SENTENCES[(index * 6 + k) % len(SENTENCES)]
                clip = synthesize(text, voice, folder / f"clip_{index:03d}_{k}.wav")
                clip.with_suffix(".txt").write_text(text, encoding="utf-8")
                total += sf.info(clip).duration
            index += 1
            continue
        total += sf.info(path).duration
        index += 1
    return total


def one_file(source: Path, target: Path) -> float:
    """Join every long recording of ``source`` into one file (the single-long-file case); its seconds."""
    import soundfile as sf

    target.mkdir(parents=True, exist_ok=True)
    parts = [sf.read(path, dtype="float32")[0] for path in sorted(source.glob("long_*.wav"))]
    rate = sf.info(next(source.glob("long_*.wav"))).samplerate
    sf.write(target / "all.wav", np.concatenate(parts), rate, subtype="PCM_16")
    return sum(map(len, parts)) / rate


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, *args, **kwargs):
    """``(result, wall seconds, CPU seconds of this process and its workers)``."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def mel_stats(clip, sample_rate: int):
    """A deterministic per-clip feature: mean and std of the log-mel spectrogram."""
    def compute():
        import librosa

        mel = np.log(librosa.feature.melspectrogram(y=clip.read(), sr=sample_rate, n_mels=80) + 1e-5)
        return {"mean": mel.mean(axis=1).astype(np.float32), "std": mel.std(axis=1).astype(np.float32)}
    return compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--keep", type=Path, default=None, help="Build the source here and keep it for re-runs.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tts-host-bench-"))
    os.environ["TTS_HOST_HOME"] = str(work / "home")
    source = args.keep or work / "source"
    if source.exists() and any(source.iterdir()):
        import soundfile as sf

        seconds = sum(sf.info(path).duration for path in source.glob("*.wav"))
    else:
        print(f"building {args.minutes:g} minutes of espeak-ng speech ...", flush=True)
        seconds = build_source(source, args.minutes)
    cores = os.cpu_count() or 1
    print(f"source: {seconds / 60:.1f} min of audio in {len(list(source.glob('*.wav')))} files; {cores} cores; "
          f"output {args.sample_rate} Hz")
    try:
        rows = []  # (step, wall s, CPU s, audio s)
        for workers in sorted({1, cores}):
            dataset, cold, cpu = timed(prepare_dataset, source, work / f"out_{workers}", "bench", args.sample_rate,
                                       workers=workers)
            rows.append((f"prepare cold, {workers} worker(s)", cold, cpu, seconds))
        _, warm, cpu = timed(prepare_dataset, source, work / f"out_{cores}", "bench", args.sample_rate)
        rows.append(("prepare warm (unchanged input)", warm, cpu, seconds))
        single_seconds = one_file(source, work / "single")
        for workers in sorted({1, cores}):
            _, wall, cpu = timed(prepare_dataset, work / "single", work / f"single_{workers}", "bench",
                                 args.sample_rate, workers=workers)
            rows.append((f"one {single_seconds / 60:.1f}-min file, {workers} worker(s)", wall, cpu, single_seconds))
        cache = FeatureCache()
        producer = producer_id("mel-stats", "0" * 64)
        params = {"n_mels": 80, "sample_rate": args.sample_rate}

        def features() -> None:
            for clip in dataset.clips:
                cache.get_or_compute(clip.sha256, producer, params, mel_stats(clip, args.sample_rate))

        for name in ("feature cache cold (log-mel stats)", "feature cache warm"):
            _, wall, cpu = timed(features)
            rows.append((name, wall, cpu, seconds))
        kept = sum(clip.duration for clip in dataset.clips)
        print(f"kept {len(dataset.clips)} clips, {kept / 60:.1f} min; rejected {len(dataset.rejects)}; "
              f"cache computed {cache.stats.computed}, hits {cache.stats.hits} "
              "(identical clips share one entry: their content hash is the same)")
        print(f"load average: {os.getloadavg()[0]:.1f} on {cores} cores (other work slows the wall times)")
        print(f"{'step':40s} {'wall s':>8s} {'x real time':>12s} {'CPU s':>8s} {'audio s / CPU s':>16s}")
        for name, wall, cpu, audio_seconds in rows:
            print(f"{name:40s} {wall:8.3f} {audio_seconds / wall:12.1f} {cpu:8.2f} {audio_seconds / max(cpu, 1e-9):16.1f}")
        print(f"target >= 50x real time cold on {cores} cores: {'met' if seconds / cold >= 50 else 'NOT met'}"
              f" ({seconds / cold:.0f}x); warm re-run {warm * 1000:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
