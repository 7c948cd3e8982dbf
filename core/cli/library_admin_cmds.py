"""``tts-host library``: the library as a whole: integrity, garbage collection, recovery."""

from __future__ import annotations

import click

from tts_host.cli.library_cmds import open_library, report_problems, size_text
from tts_host.errors import TTSHostError


@click.group("library")
def library_group() -> None:
    """The voice library as a whole: garbage collection and integrity."""


@library_group.command("gc")
@click.option("--runs", is_flag=True, help="Also remove the work folders of failed or interrupted fine-tunes.")
def library_gc(runs: bool) -> None:
    """Remove files no base, checkpoint or voice uses (safe while other commands run)."""
    with open_library() as lib:
        report = lib.gc(runs=runs)
    click.echo(f"removed {report.blobs} unused file(s) ({size_text(report.bytes)}), {report.temp_files} stale temp "
               f"file(s), {report.leases} stale lease(s)" + (f", {report.runs} work folder(s)" if runs else ""))
    if report.unindexed:
        click.echo(f"kept {report.unindexed} file(s) that records use but the index does not know: "
                   "run `tts-host library recover`", err=True)


@library_group.command("verify")
@click.option("--deep", is_flag=True, help="Re-hash every file and run SQLite's full integrity check.")
def library_verify(deep: bool) -> None:
    """Check the index and every file in the library; list what gc would remove."""
    with open_library() as lib:
        for line in lib.rewrite_missing_records():
            click.echo(line)
        index = lib.index_problems(deep=deep)
        problems = lib.verify(deep=deep)
        leftovers = lib.leftovers()
    for line in index:
        click.echo(f"INDEX {line}", err=True)
    for leftover in leftovers:
        click.echo(f"leftover {leftover.path} ({size_text(leftover.bytes)}): {leftover.what}")
    if leftovers:
        click.echo("`tts-host library gc` removes the temp files, `gc --runs` the work folders too; a replaced "
                   "index is yours to delete")
    if index and not problems:
        raise TTSHostError(f"{len(index)} index problem(s): see above, each with what to do")
    report_problems(problems, "the library")


@library_group.command("recover")
@click.option("--force", is_flag=True, help="Rebuild even a healthy index from the record journal.")
def library_recover(force: bool) -> None:
    """Rebuild a missing or damaged index from the record files and blobs (the old index is kept beside it)."""
    from tts_host.home import default_home
    from tts_host.speakers.recovery import recover

    report = recover(default_home() / "library", force=force)
    for path in report.moved_aside:
        click.echo(f"kept the old index as {path}")
    for line in report.skipped:
        click.echo(f"not restored: {line}", err=True)
    for line in report.uncertain:
        click.echo(f"restored as the journal had it, though a write was changing it when it stopped: {line}")
    click.echo(f"restored {report.bases} base(s), {report.checkpoints} checkpoint(s), {report.voices} voice(s) "
               f"over {report.blobs} file(s)")
    if report.unused_blobs:
        click.echo(f"warning: {report.unused_blobs} file(s) in the store are used by no record: a record file may "
                   "be lost with the index (the files stay until `tts-host library gc`; back up library/blobs "
                   "before running it)", err=True)
    with open_library() as lib:
        problems = lib.verify(deep=True)
    if report.skipped:
        raise TTSHostError(f"{len(report.skipped)} record(s) could not be restored: see above")
    report_problems(problems, "the recovered library")


@library_group.command("path")
def library_path() -> None:
    """Print where the library lives."""
    from tts_host.home import default_home, index_path

    click.echo(index_path(default_home()).parent)


COMMANDS = [library_group]
