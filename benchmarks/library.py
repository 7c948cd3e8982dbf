"""Voice library benchmark: listing, verify fast path, verify --deep next to coreutils sha256sum.

Run: ``.venv/bin/python benchmarks/library.py [--voices 10000] [--big-mb 1024] [--files 32]``
Prints figures and ratios; targets (this project's 2-core machine): ``voices list`` with
10,000 voices under 0.3 s including CLI start, the verify fast path on 10,000 files under
0.5 s, ``verify --deep`` at least 3x the throughput of ``sha256sum`` on the same files.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from library_backend import PRESETS, ToyPlugin, write_model  # noqa: E402
from tts_host.host import PluginHost  # noqa: E402
from tts_host.speakers import Library  # noqa: E402
from tts_host.hashing import sha256_file  # noqa: E402


def toy_library(home: Path) -> Library:
    """A library with the toy test backend (the benchmark needs no real model)."""
    host = PluginHost(entry_points_source=[])
    host.add_plugin(ToyPlugin(), "toy")
    return Library(home, host=host.load())


def best_of(runs: int, action) -> float:
    """The fastest of ``runs`` timings of ``action()`` in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def cli_seconds(home: Path, *args: str, runs: int = 5) -> tuple[float, float]:
    """Best wall time and CPU time (user + sys) of ``tts-host ARGS`` in a fresh process (start included).

    CPU time is printed too because the wall time on a shared machine includes waiting for a core.
    """
    env = {**os.environ, "TTS_HOST_HOME": str(home), "COLUMNS": "120"}
    exe = shutil.which("tts-host", path=str(Path(sys.executable).parent)) or "tts-host"
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([exe, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def sha256sum_seconds(paths: list[Path], runs: int = 3) -> float:
    """Best wall time of one coreutils ``sha256sum`` over ``paths``."""
    return best_of(runs, lambda: subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL))


def build_voices(home: Path, count: int) -> Library:
    """A library with ``count`` voices, each with its own conditioning blob."""
    import numpy as np

    lib = toy_library(home)
    base = lib.add_base("toy", write_model(home / "base-src", PRESETS["tiny"], 0), "tiny")
    start = time.perf_counter()
    for index in range(count):
        lib.add_voice(f"voice-{index:05d}", "toy", base, {"speaker_embedding": np.full(8, index, np.float32)},
                      language="en")
    seconds = time.perf_counter() - start
    print(f"add_voice:            {count} voices in {seconds:.1f} s ({seconds / count * 1000:.1f} ms each, fsynced)")
    return lib


def bench_listing(home: Path, lib: Library, count: int) -> None:
    python = best_of(5, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    help_s = cli_seconds(home, "--help")
    table = cli_seconds(home, "voices", "list")
    as_json = cli_seconds(home, "voices", "list", "--json")
    blobs = len(lib.blobs.on_disk())
    fast = best_of(5, lambda: lib.verify())
    fast_cli = cli_seconds(home, "library", "verify", runs=3)
    print(f"python -c pass:       {python:.3f} s")
    print(f"tts-host --help:      {help_s[0]:.3f} s wall, {help_s[1]:.3f} s CPU")
    print(f"voices list:          {table[0]:.3f} s wall, {table[1]:.3f} s CPU with {count} voices, CLI start "
          f"included (target < 0.3 s) {'OK' if table[0] < 0.3 else 'MISSED'}")
    print(f"voices list --json:   {as_json[0]:.3f} s wall, {as_json[1]:.3f} s CPU")
    print(f"verify fast path:     {fast:.3f} s over {blobs} files in-process (target < 0.5 s) "
          f"{'OK' if fast < 0.5 else 'MISSED'}; `tts-host library verify` {fast_cli[0]:.3f} s wall")


def write_random(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random bytes (incompressible, cheap to make)."""
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as out:
        for index in range(size >> 20):
            out.write(chunk[index % 251:] + chunk[: index % 251])
    return path


def bench_deep(work: Path, big_mb: int, files: int) -> None:
    lib = toy_library(work / "home")
    base = lib.add_base("toy", write_model(work / "base-src", PRESETS["tiny"], 0), "tiny")
    big = write_random(work / "big.bin", big_mb << 20)
    voice = lib.add_voice("big", "toy", base, None, [big])
    big.unlink()
    blob = lib.blob_path(voice.files[0].sha256)
    size = blob.stat().st_size
    one = best_of(3, lambda: sha256_file(blob))
    deep_one = best_of(3, lambda: lib.verify("big", deep=True))
    coreutils_one = sha256sum_seconds([blob])
    print(f"deep, one {size >> 20} MiB file: hashlib {size / one / 1e6:.0f} MB/s, verify --deep "
          f"{size / deep_one / 1e6:.0f} MB/s, sha256sum {size / coreutils_one / 1e6:.0f} MB/s -> "
          f"{coreutils_one / deep_one:.2f}x sha256sum (target >= 3x) {'OK' if coreutils_one / deep_one >= 3 else 'MISSED'}")
    lib.remove_voice("big")
    lib.gc()
    each = max(1, (big_mb << 20) // files)
    for index in range(files):
        clip = write_random(work / f"part{index}.bin", each)
        with open(clip, "ab") as handle:
            handle.write(index.to_bytes(4, "little"))
        lib.add_voice(f"part{index}", "toy", base, None, [clip])
        clip.unlink()
    paths = list(lib.blobs.on_disk().values())
    total = sum(p.stat().st_size for p in paths)
    deep_many = best_of(3, lambda: lib.verify(deep=True))
    coreutils_many = sha256sum_seconds(paths)
    print(f"deep, {len(paths)} files, {total >> 20} MiB: verify --deep {total / deep_many / 1e6:.0f} MB/s on "
          f"{os.cpu_count()} cores, sha256sum {total / coreutils_many / 1e6:.0f} MB/s -> "
          f"{coreutils_many / deep_many:.2f}x sha256sum (target >= 3x) {'OK' if coreutils_many / deep_many >= 3 else 'MISSED'}")
    lib.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=10_000)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tts-host-bench-") as tmp:
        work = Path(tmp)
        lib = build_voices(work / "voices-home", args.voices)
        bench_listing(work / "voices-home", lib, args.voices)
        lib.close()
        shutil.rmtree(work / "voices-home")
        bench_deep(work / "deep", args.big_mb, args.files)


if __name__ == "__main__":
    main()
