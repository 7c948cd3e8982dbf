"""``tts-host plugins`` and ``tts-host backends``: what is installed and where it came from."""

from __future__ import annotations

import json

import click

from tts_host.host import BUILTIN_DISTRIBUTION, get_host


def _plugin_rows(include_builtin: bool) -> list[dict]:
    host = get_host()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": info.hooks,
            "components": [{"kind": kind, "name": name} for kind, name in info.registered],
            "status": "loaded",
        }
        for info in host.plugins.values()
        if include_builtin or info.distribution != BUILTIN_DISTRIBUTION
    ]
    rows += [
        {
            "name": problem.plugin,
            "distribution": problem.distribution,
            "version": problem.version,
            "hooks": [],
            "components": [],
            "status": f"skipped: {problem.message}",
        }
        for problem in host.problems
    ]
    return sorted(rows, key=lambda row: row["name"])


@click.command("plugins")
@click.option("--all", "include_builtin", is_flag=True, help="Include the built-in plugins shipped with tts-host.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(include_builtin: bool, as_json: bool) -> None:
    """List installed plugins: name, version, hooks and the components they register."""
    rows = _plugin_rows(include_builtin)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tts-host plugins" + (" (all)" if include_builtin else ""))
    for column in ("plugin", "distribution", "version", "hooks", "components", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["distribution"] or "-",
            row["version"] or "-",
            "\n".join(row["hooks"]) or "-",
            "\n".join(f"{c['kind']}: {c['name']}" for c in row["components"]) or "-",
            row["status"],
        )
    console = Console()
    if not rows:
        console.print("No plugins installed" + ("." if include_builtin else " (use --all to include the built-ins)."))
        return
    console.print(table)


def _backend_rows() -> list[dict]:
    host = get_host()
    rows = []
    for registration in host.backends():
        factory = registration.factory
        problems = host.composition_problems(factory.name)
        rows.append(
            {
                "name": factory.name,
                "description": factory.description,
                "components": {role: {"kind": kind, "name": name} for role, (kind, name) in factory.components.items()},
                "plugin": registration.plugin,
                "distribution": registration.distribution,
                "version": registration.version,
                "fits": not problems,
                "problems": problems,
            }
        )
    return rows


@click.command("backends")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def backends_command(as_json: bool) -> None:
    """List backends: their components, the plugin that ships them, whether they fit together."""
    rows = _backend_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("No backends installed. Install a backend plugin, or check `tts-host plugins --all`.")
        return
    table = Table(title="tts-host backends")
    for column in ("backend", "components", "plugin", "composition"):
        table.add_column(column, overflow="fold")
    for row in rows:
        components = "\n".join(f"{role}: {c['name']}" for role, c in row["components"].items())
        origin = f"{row['plugin']} ({row['distribution']} {row['version']})".replace(" ()", "")
        status = "[green]fits[/green]" if row["fits"] else "[red]" + "; ".join(row["problems"]) + "[/red]"
        table.add_row(row["name"], components, origin, status)
    console.print(table)


COMMANDS = [plugins_command, backends_command]
