"""``tts-host demo``: the command the xtts plugin adds (through the ``register_commands`` hook)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=Path(".tts-host-demo"),
              show_default=True, help="Where the demo keeps its library, speech and outputs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_command(workdir: Path, quiet: bool) -> None:
    """Run the whole job on an embedded default: two espeak-ng voices, a tiny XTTS, A then B from A."""
    from tts_host.plugins.xtts.demo import run_demo

    for line in run_demo(workdir, progress=not quiet):
        click.echo(line)
