"""``tts-host base``, ``tts-host voices`` and ``tts-host library``: the voice library.

Listing and showing only read the SQLite index: they never import torch or build a backend.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from tts_host.errors import TTSHostError

if TYPE_CHECKING:
    from tts_host.speakers import Library
    from tts_host.speakers.library import Problem
    from tts_host.speakers.records import Base, Model, Voice


def open_library() -> Library:
    """The library of ``$TTS_HOST_HOME``."""
    from tts_host.host import get_host
    from tts_host.speakers import Library

    return Library(host=get_host())


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def size_text(count: float) -> str:
    """Bytes in B, KB, MB or GB (powers of 1000)."""
    for unit in ("B", "KB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def _print_table(title: str, columns: list[str], rows: list[tuple[str, ...]], empty: str) -> None:
    """A table drawn in rich's heavy-head box style, laid out directly (rich's ``Table`` spends
    about half a millisecond per row, too slow for a 10,000-voice listing)."""
    if not rows:
        click.echo(empty)
        return
    columns_out: list[tuple[str, ...]] = []
    widths: list[int] = []
    specs: list[str] = []
    for column in zip(columns, *rows):
        if "".join(column).isascii():
            size = max(map(len, column))
            specs.append(f"{{:<{size}}}")
        else:
            from rich.cells import cell_len

            sizes = [cell_len(cell) for cell in column]
            size = max(sizes)
            column = tuple(cell + " " * (size - used) for cell, used in zip(column, sizes))
            specs.append("{}")
        columns_out.append(column)
        widths.append(size)
    table = list(zip(*columns_out))
    body = ("│ " + " │ ".join(specs) + " │").format

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (size + 2) for size in widths) + right

    out = [title.center(sum(widths) + 3 * len(widths) + 1).rstrip(), rule("┏", "━", "┳", "┓"),
           body(*table[0]).replace("│", "┃"), rule("┡", "━", "╇", "┩")]
    out += [body(*row) for row in table[1:]]
    out.append(rule("└", "─", "┴", "┘"))
    click.echo("\n".join(out))


def report_problems(problems: list[Problem], checked: str, changed: Sequence[str] = ()) -> None:
    """Print each damaged file and each protected file that is not the base's, and fail with one line; or say all
    is intact."""
    for problem in problems:
        click.echo(f"DAMAGED {problem.line()}", err=True)
    for line in changed:
        click.echo(f"CHANGED {line}", err=True)
    if problems or changed:
        raise TTSHostError(f"{len(problems) + len(changed)} damaged or changed file(s) in {checked}: see above; "
                           "`tts-host voices repair NAME` or re-adding the original folder restores them")
    click.echo(f"{checked}: all files intact")


def _safetensors_shapes(path: Path) -> dict[str, Any]:
    """Tensor shapes from a safetensors header, read without numpy."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return {k: {"dtype": v["dtype"], "shape": v["shape"]} for k, v in header.items() if k != "__metadata__"}


# -- base ---------------------------------------------------------------------------------
@click.group("base")
def base_group() -> None:
    """Base models: import a published model folder, build one offline, verify, remove."""


@base_group.command("add")
@click.argument("backend")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Name in the library (default: the folder's name).")
@click.option("--codec", type=click.Path(path_type=Path), default=None,
              help="A separate codec folder the model needs (llasa: the X-Codec-2.0 folder).")
def base_add(backend: str, path: Path, name: str | None, codec: Path | None) -> None:
    """Import the base model folder PATH for BACKEND (only the files the backend declares)."""
    with open_library() as lib:
        model = lib.backend(backend)
        if codec is None and not model.assembles_bases:
            base = lib.add_base(model, path, name)
        else:
            import tempfile

            parts = {"codec": codec} if codec is not None else {}
            with tempfile.TemporaryDirectory() as tmp:
                folder = model.assemble_base(path, parts, Path(tmp) / "base")
                base = lib.add_base(model, folder, name or Path(path).resolve().name)
        click.echo(f"added base '{base.name}' ({base.backend}, {len(base.files)} files, "
                   f"{size_text(sum(f.size for f in base.files))})")


@base_group.command("init")
@click.argument("backend")
@click.option("--preset", required=True, help="The backend's preset (see the backend's docs).")
@click.option("--name", help="Name in the library (default: BACKEND-PRESET).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
def base_init(backend: str, preset: str, name: str | None, seed: int) -> None:
    """Build a base for BACKEND offline with random weights and add it."""
    from tts_host.bases import init_base

    with open_library() as lib:
        base = init_base(lib, lib.backend(backend), preset, name, seed=seed)
        click.echo(f"added base '{base.name}' ({base.backend} preset {preset}, seed {seed}, {len(base.files)} files)")


@base_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def base_list(as_json: bool) -> None:
    """List the bases in the library."""
    with open_library() as lib:
        bases = lib.bases()
        users = lib.voice_counts()
    rows = [{"name": b.name, "backend": b.backend, "files": len(b.files), "bytes": sum(f.size for f in b.files),
             "voices": users.get(b.id, 0), "created": _when(b.created)} for b in bases]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table("bases", ["name", "backend", "files", "size", "voices", "created"],
                 [(r["name"], r["backend"], str(r["files"]), size_text(r["bytes"]), str(r["voices"]), r["created"])
                  for r in rows], "No bases yet: `tts-host base add BACKEND PATH` or `tts-host base init BACKEND`.")


@base_group.command("verify")
@click.argument("name", required=False)
@click.option("--deep", is_flag=True, help="Re-hash every file instead of trusting the stat cache.")
def base_verify(name: str | None, deep: bool) -> None:
    """Check the files of base NAME (or of every base)."""
    with open_library() as lib:
        names = [name] if name else [b.name for b in lib.bases()]
        problems = []
        for base_name in names:
            problems += [p for p in lib.verify(f"base:{base_name}", deep=deep) if p not in problems]
        report_problems(problems, f"base '{name}'" if name else f"{len(names)} base(s)")


@base_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def base_remove(name: str, yes: bool) -> None:
    """Remove base NAME (refused while a checkpoint or voice uses it)."""
    with open_library() as lib:
        lib.base(name)
        if not yes:
            click.confirm(f"Remove base '{name}'?", abort=True)
        lib.remove_base(name)
        click.echo(f"removed base '{name}' (`tts-host library gc` frees its files)")


# -- voices -------------------------------------------------------------------------------
@click.group("voices")
def voices_group() -> None:
    """Voices: list, show, clone from reference clips, verify, repair, export and import."""


@voices_group.command("list")
@click.option("--backend", help="Only voices of this backend.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def voices_list(backend: str | None, as_json: bool) -> None:
    """List the voices in the library."""
    from tts_host.speakers import listing
    from tts_host.home import default_home
    from tts_host.speakers.index_health import open_index

    conn = open_index(default_home() / "library")
    try:
        if as_json:
            click.echo(json.dumps(listing.voice_rows(conn, backend), indent=2, ensure_ascii=False))
            return
        rows = listing.voice_table(conn, backend)
    finally:
        conn.close()
    _print_table("voices", ["name", "backend", "model", "language", "created"], rows,
                 "No voices yet: `tts-host voices add NAME --backend B --ref clip.wav`.")


@voices_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def voices_show(name: str, as_json: bool) -> None:
    """Show voice NAME as YAML: model, training figures (forgetting included), lineage, files, conditioning."""
    import json

    import yaml

    from tts_host.consent import consent_of
    from tts_host.training.report import TRAINING_FIELDS
    from tts_host.voice_settings import speech_settings

    from tts_host.speakers import Checkpoint

    with open_library() as lib:
        voice = lib.voice(name)
        model = lib.model_of(voice)
        base = lib.base_by_id(voice.base_id)
        lineage = lib.lineage(model) if isinstance(model, Checkpoint) else []
        conditioning = next((f for f in voice.files if f.role == "conditioning"), None)
        shapes = _safetensors_shapes(lib.blob_path(conditioning.sha256)) if conditioning else {}
        files = lib.files_of(voice)
        consent, speech = consent_of(lib, voice), speech_settings(lib, voice)
        stored = _own_bytes(voice, model, base)
    data = {
        "name": voice.name,
        "backend": voice.backend,
        "language": voice.language,
        "notes": voice.notes,
        "consent": consent,
        "speech": speech or None,
        "created": _when(voice.created),
        "model": model.label,
        "training": {key: lineage[-1].metrics.get(key) for key in TRAINING_FIELDS} if lineage else None,
        "base": {"name": base.name, "architecture": base.architecture},
        "lineage": [{"checkpoint": c.id, "speakers": list(c.speakers), "metrics": c.metrics,
                     "training_config": c.training_config, "created": _when(c.created)} for c in lineage],
        "files": [{"role": f.role, "path": f.path, "sha256": f.sha256, "size": f.size}
                  for f in files],
        "conditioning": shapes,
        "stored": stored,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


def _own_bytes(voice: Voice, model: Model, base: Base) -> dict[str, Any]:
    """What the voice adds to the store beyond its base: its model's other files and its own, by role."""
    base_blobs = {f.sha256 for f in base.files}
    own = {f.role: f.size for f in model.files if f.sha256 not in base_blobs}
    own.update({f"voice:{f.role}": f.size for f in voice.files})
    return {"bytes": sum(own.values()), "files": own}


@voices_group.command("rename")
@click.argument("old")
@click.argument("new")
def voices_rename(old: str, new: str) -> None:
    """Rename voice OLD to NEW."""
    with open_library() as lib:
        lib.rename_voice(old, new)
    click.echo(f"renamed voice '{old}' to '{new}'")


@voices_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def voices_remove(name: str, yes: bool) -> None:
    """Remove voice NAME (its files go at the next `tts-host library gc`)."""
    with open_library() as lib:
        lib.voice(name)
        if not yes:
            click.confirm(f"Remove voice '{name}'?", abort=True)
        lib.remove_voice(name)
    click.echo(f"removed voice '{name}'")


@voices_group.command("verify")
@click.argument("name", required=False)
@click.option("--deep", is_flag=True, help="Re-hash every file instead of trusting the stat cache.")
def voices_verify(name: str | None, deep: bool) -> None:
    """Check the files of voice NAME (its model included), or of the whole library."""
    with open_library() as lib:
        if name:
            lib.voice(name)
        report_problems(lib.verify(name, deep=deep), f"voice '{name}'" if name else "the library",
                        lib.protected_changes(name))


@voices_group.command("repair")
@click.argument("name")
@click.option("--source", "sources", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A file or folder holding intact copies of damaged files (repeatable).")
def voices_repair(name: str, sources: tuple[Path, ...]) -> None:
    """Repair voice NAME: protected files back to the base's, damaged files from intact copies."""
    with open_library() as lib:
        report = lib.repair(name, sources)
        problems = lib.verify(name, deep=True)
    for action in report.actions:
        click.echo(action)
    report_problems(problems, f"voice '{name}'")


def _not_empty(ctx: click.Context, param: click.Parameter, value: str) -> Path:
    """The path given, refused when empty (``Path("")`` would quietly mean the current folder)."""
    if not value:
        raise click.BadParameter("the path is empty")
    return Path(value)


@voices_group.command("export")
@click.argument("name")
@click.option("-o", "--output", "out", required=True, type=click.Path(), callback=_not_empty,
              help="File to write (an existing folder gets NAME.ttsvoice inside it).")
@click.option("--format", "fmt", default="ttsvoice", show_default=True,
              help="ttsvoice (the library's archive) or a format of the voice's backend.")
@click.option("--no-base", is_flag=True, help="Leave the base's files out (the importer must have the base).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def voices_export(name: str, out: Path, fmt: str, no_base: bool, force: bool) -> None:
    """Export voice NAME to a file (a .ttsvoice archive by default); every file is re-hashed on the way."""
    from tts_host.oserrors import write_error_line
    from tts_host.home import default_home

    try:
        with open_library() as lib:
            if fmt == "ttsvoice":
                out = lib.export_voice(name, out, include_base=not no_base, force=force)
            else:
                out = lib.export_as(name, fmt, out, force=force)
    except OSError as exc:
        source = Path(exc.filename) if isinstance(exc.filename, str) else None
        if source is not None and default_home().resolve() in source.resolve().parents:  # reading the library
            raise TTSHostError(f"cannot read {source}: {exc.strerror}; `tts-host library verify` checks the "
                               "library") from exc
        raise TTSHostError(write_error_line(exc, out)) from exc
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.stat().st_size
    click.echo(f"exported voice '{name}' to {out} ({size_text(written)})")


@voices_group.command("import")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--as", "as_name", help="Import under this name.")
def voices_import(archive: Path, as_name: str | None) -> None:
    """Import a .ttsvoice ARCHIVE (every hash checked before anything enters the library)."""
    with open_library() as lib:
        voice = lib.import_voice(archive, as_name)
    click.echo(f"imported voice '{voice.name}' ({voice.backend}, base '{voice.base_name}')")


COMMANDS = [base_group, voices_group]
