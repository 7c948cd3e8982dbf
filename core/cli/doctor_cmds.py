"""``tts-host doctor``: one line per check of the installation, each failing one with its fix."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor_command(as_json: bool) -> None:
    """Check Python, espeak-ng/ffmpeg, the torch family, CPU/GPU, the library and plugins.

    Exits 0 when everything tts-host needs works, 1 otherwise.
    """
    from tts_host.doctor import FAIL, as_dicts, run_checks
    from tts_host.home import default_home

    findings = run_checks(default_home())
    if as_json:
        click.echo(json.dumps(as_dicts(findings), indent=2))
    else:
        for finding in findings:
            click.echo(finding.line())
    if any(f.status == FAIL for f in findings):
        sys.exit(1)


COMMANDS = [doctor_command]
