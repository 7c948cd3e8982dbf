"""``tts-host eval``: speaker similarity, real-time factor and held-out loss of library voices."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tts_host.cli.library_cmds import open_library
from tts_host.errors import TTSHostError


@click.command("eval")
@click.argument("voices", nargs=-1)
@click.option("--before", "before", default=None, metavar="CHECKPOINT",
              help="Also score each voice on this model (e.g. checkpoint:1, the start of a later fine-tune).")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--png", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write a bar chart.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
def eval_command(voices: tuple[str, ...], before: str | None, as_json: bool, png: Path | None, seed: int) -> None:
    """Score VOICES (default: every voice): similarity of their speech to their own recordings, real-time
    factor, held-out loss."""
    from tts_host.host import get_host
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.voice_eval import evaluate, plot

    similarity = SpeakerSimilarity()
    with open_library() as library:
        names = list(voices) or [v.name for v in library.voices()]
        if not names:
            raise TTSHostError("the library has no voices to evaluate")
        host = get_host()
        scores = [evaluate(library, host, name, similarity, seed=seed) for name in names]
        earlier = [evaluate(library, host, name, similarity, before, seed=seed) for name in names] if before else []
    if as_json:
        click.echo(json.dumps({"scores": [s.to_json() for s in scores], "before": [s.to_json() for s in earlier]},
                              indent=2))
    else:
        _table(scores, earlier)
    if png is not None:
        click.echo(f"chart: {plot(scores, earlier, png)}", err=as_json)


def _table(scores: list, earlier: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("voice", "model", "similarity", "real-time factor", "held-out loss", "recordings")
    for score in [*earlier, *scores]:
        heldout = "-" if score.heldout_loss is None else f"{score.heldout_loss:.4f}"
        table.add_row(score.voice, score.model, f"{score.similarity:.3f}", f"{score.real_time_factor:.2f}", heldout,
                      str(score.recordings))
    Console().print(table)
    for now, then in zip(scores, earlier):
        click.echo(f"{now.voice}: similarity {then.similarity:.3f} on {then.model} -> {now.similarity:.3f} on "
                   f"{now.model} ({now.similarity - then.similarity:+.3f})")


@click.command("map")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="Also print the voices' map positions as JSON.")
def map_command(out: Path, as_json: bool) -> None:
    """A PNG of the library's voices placed by their speaker embeddings, labelled, coloured by backend."""
    from tts_host.similarity import SpeakerSimilarity
    from tts_host.voice_map import plot_map, voice_points

    with open_library() as library:
        points = voice_points(library, SpeakerSimilarity())
    path = plot_map(points, out)
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in points], indent=2))
    click.echo(f"map of {len(points)} voice(s): {path}", err=as_json)


COMMANDS = [eval_command]
