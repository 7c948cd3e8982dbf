"""The ``tts-host`` entry point: the root group, plugin commands and error handling."""

from __future__ import annotations

import os
import sys
import traceback

import click

from tts_host import __version__
from tts_host.cli import (
    dataset_cmds,
    doctor_cmds,
    eval_cmds,
    library_admin_cmds,
    library_cmds,
    model_cmds,
    plugin_cmds,
    serve_cmds,
    voice_edit_cmds,
)
from tts_host.errors import TTSHostError
from tts_host.host import get_host

DEBUG_ENV = "TTS_HOST_DEBUG"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="tts-host")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """tts-host: multi-speaker voice fine-tuning with a verified voice library.

    Build a library of voices, fine-tune XTTS, SoVITS or Llasa on one speaker after another
    without corrupting the model, and speak with any voice. Backends and components come
    from plugins: `tts-host plugins` lists them.
    """


library_cmds.voices_group.add_command(eval_cmds.map_command)
for command in voice_edit_cmds.VOICE_COMMANDS:
    library_cmds.voices_group.add_command(command)
for module in (plugin_cmds, library_cmds, library_admin_cmds, dataset_cmds, model_cmds, serve_cmds, eval_cmds,
               doctor_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: exit 0 on success, 1 on failure, 2 on usage errors."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        get_host().add_commands(cli)
        cli.main(args=args, prog_name="tts-host", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TTSHostError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            traceback.print_exc()
            click.echo(f"error: {type(exc).__name__}: {_one_line(exc)}", err=True)
        else:
            click.echo(f"error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
