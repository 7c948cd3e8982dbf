"""Run processing jobs across CPU cores with a rich progress bar measured in seconds of audio."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from tts_host.data.ingest import SourceItem
from tts_host.data.pipeline import Job, JobResult, Piece, Plan, merge, plan, process, render
from tts_host.data.settings import DataSettings

_progress_queue: Any = None
CHUNK_SECONDS = 60.0  # pieces of one long file are rendered in chunks of this much audio, in parallel


def _init_worker(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue


def _report(seconds: float) -> None:
    if _progress_queue is not None and seconds > 0:
        _progress_queue.put(seconds)


def _plan_work(job: Job) -> Plan:
    return plan(job, _report)


def _render_work(job: Job, pieces: list[Piece]) -> list:
    return render(job, pieces, _report)


def chunks(pieces: list[Piece], seconds: float = CHUNK_SECONDS) -> list[list[Piece]]:
    """Consecutive pieces grouped into chunks of at least ``seconds`` of audio (the last may be shorter)."""
    groups: list[list[Piece]] = [[]]
    total = 0.0
    for piece in pieces:
        if total >= seconds:
            groups.append([])
            total = 0.0
        groups[-1].append(piece)
        total += piece.reject.duration
    return [group for group in groups if group]


def _header_seconds(item: SourceItem) -> float:
    import soundfile

    try:
        return float(soundfile.info(str(item.audio)).duration)
    except Exception:
        return 0.0


def run_jobs(jobs: list[tuple[str, str, SourceItem]], speaker: str, wav_dir: Path, settings: DataSettings, *,
             workers: int | None = None, progress: bool = False) -> dict[str, JobResult]:
    """Process ``(key, clip id, item)`` jobs; returns results by key. One process per core by default."""
    if not jobs:
        return {}
    wav_dir.mkdir(parents=True, exist_ok=True)
    tasks = {key: Job(item, clip_id, speaker, wav_dir, settings) for key, clip_id, item in jobs}
    seconds = sum(_header_seconds(item) for _, _, item in jobs)
    workers = max(1, workers or os.cpu_count() or 1)
    if len(tasks) == 1 and seconds <= CHUNK_SECONDS:
        workers = 1  # one short file: a process pool would only add start-up time
    bar = _progress_bar(seconds) if progress else None
    with _showing(bar):
        advance: Callable[[float], None] = (lambda seconds: bar.advance(bar.task_ids[0], seconds)) if bar else (
            lambda seconds: None)
        if workers == 1:
            return {key: process(job, advance) for key, job in tasks.items()}
        return _run_parallel(tasks, workers, advance)


def _run_parallel(tasks: dict[str, Job], workers: int, advance: Callable[[float], None]) -> dict[str, JobResult]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from queue import Empty

    # fork: workers inherit the loaded modules and never re-import the caller's __main__
    # (a script without a __main__ guard, or code read from stdin, works as is).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    queue = context.Queue()

    def drain() -> None:
        while True:
            try:
                advance(queue.get_nowait())
            except Empty:
                return

    plans: dict[str, Plan] = {}
    parts: dict[str, list[list]] = {key: [] for key in tasks}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(queue,)) as pool:
        # Pass 1 of every file, then pass 2 of each file in chunks, so one long file uses every core.
        pending = {pool.submit(_plan_work, job): ("plan", key) for key, job in tasks.items()}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    stage, key = pending.pop(future)
                    if stage == "plan":
                        plans[key] = future.result()
                        for group in chunks(plans[key].pieces):
                            pending[pool.submit(_render_work, tasks[key], group)] = ("render", key)
                    else:
                        parts[key].append(future.result())
        except BaseException:  # e.g. a full disk: start nothing more, let running work end, then report
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    drain()
    return {key: merge(plans[key], parts[key]) for key in tasks}


@contextmanager
def _showing(bar: Any) -> Iterator[None]:
    """Show ``bar`` (if any) while the block runs; a failure erases it, leaving the error the only output."""
    if bar is None:
        yield
        return
    bar.start()
    try:
        yield
    except BaseException:
        bar.live.transient = True
        bar.live.stop()  # not bar.stop(): on a non-terminal that prints an empty line
        raise
    bar.stop()


def _progress_bar(total_seconds: float):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]preparing"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s audio"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
    bar.add_task("prepare", total=max(total_seconds, 1e-9))
    return bar
