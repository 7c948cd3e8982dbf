"""CLI start-up: `tts-host --help` next to `python -c "import torch"` and coqui's `tts --help`.

Runs each command several times in one run (interleaved) and prints the median wall time, the
median peak RSS and the ratios. Target: tts-host under 0.25 s and under 60 MiB on 2 cores.

    python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} exited with {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    commands = {
        "tts-host --help": [str(BIN / "tts-host"), "--help"],
        "tts-host plugins": [str(BIN / "tts-host"), "plugins", "--all"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
    }
    coqui = shutil.which("tts", path=str(BIN))
    if coqui:
        commands["coqui tts --help"] = [coqui, "--help"]
    else:
        print("coqui-tts is not installed in this environment: its row is skipped")
    for command in commands.values():  # warm the file cache once
        measure(command)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            samples[name].append(measure(command))
    ours_time = statistics.median(t for t, _ in samples["tts-host --help"])
    ours_rss = statistics.median(r for _, r in samples["tts-host --help"])
    print(f"{'command':28s} {'median s':>9s} {'peak MiB':>9s} {'time x tts-host':>16s} {'RSS x tts-host':>15s}")
    for name, values in samples.items():
        wall = statistics.median(t for t, _ in values)
        rss = statistics.median(r for _, r in values)
        print(f"{name:28s} {wall:9.3f} {rss:9.1f} {wall / ours_time:16.1f} {rss / ours_rss:15.1f}")
    verdict = "meets" if ours_time < 0.25 and ours_rss < 60 else "misses"
    print(f"tts-host --help: {ours_time:.3f} s, {ours_rss:.1f} MiB -> {verdict} the target (< 0.25 s, < 60 MiB)")


if __name__ == "__main__":
    main()
