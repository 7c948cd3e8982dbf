"""Ingest: find the audio files and transcripts of a source folder or list file.

Formats: LJSpeech ``metadata.csv`` (``id|text|normalized``, audio in ``wavs/``), coqui CSV
(header ``audio_file|text|speaker_name``), GPT-SoVITS list files (``path|speaker|language|text``)
and a plain folder of audio files with optional same-named ``.txt`` transcripts. Problems with
single lines or files become rejects with a one-line reason; only an unusable source raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from tts_host.data.audio import FFMPEG_EXTENSIONS, NATIVE_EXTENSIONS
from tts_host.data.dataset import Reject
from tts_host.data.errors import DatasetError
from tts_host.data.formats import FORMATS

AUDIO_EXTENSIONS = NATIVE_EXTENSIONS + FFMPEG_EXTENSIONS
COQUI_HEADER = ("audio_file", "text")


@dataclass(frozen=True)
class SourceItem:
    """One audio file to process, with its transcript (None: untranscribed, may be sliced)."""

    audio: Path
    name: str  # display name and manifest key: path relative to the source
    text: str | None
    language: str


@dataclass
class Ingested:
    """What ingest found: items to process, lines or files rejected already, and notes for the report."""

    format: str
    items: list[SourceItem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def detect_format(source: Path) -> str:
    """The format of a source folder or list file (DatasetError when it cannot be told)."""
    if source.is_dir():
        if (source / "metadata.csv").is_file():
            return _format_of_list(source / "metadata.csv")
        if sorted(source.glob("*.list")):
            return "sovits"
        return "folder"
    if source.is_file():
        if source.suffix.lower() == ".list":
            return "sovits"
        return _format_of_list(source)
    raise DatasetError(f"{source}: no such file or folder")


def _format_of_list(path: Path) -> str:
    first = _first_line(path)
    fields = [part.strip().lower() for part in first.split("|")]
    if tuple(fields[:2]) == COQUI_HEADER:
        return "coqui"
    if len(fields) >= 4:
        return "sovits"
    return "ljspeech"


def _first_line(path: Path) -> str:
    with open(path, "rb") as handle:
        return handle.readline().decode("utf-8-sig", errors="replace").strip()


def _lines(path: Path) -> list[tuple[int, str | None, str]]:
    """``(line number, text or None, error)`` for each non-blank line, decoded as UTF-8 one by one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append((number, line.decode("utf-8").strip(), ""))
        except UnicodeDecodeError as exc:
            lines.append((number, None, f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}"))
    return lines


def _resolve(base: Path, name: str, folders: tuple[str, ...] = ("",)) -> Path | None:
    """The audio file ``name`` refers to: as written, relative to ``base``, or by its file name."""
    candidates = [Path(name)] if Path(name).is_absolute() else []
    plain = name.replace("\\", "/")
    file_name = PureWindowsPath(name).name
    for folder in folders:
        candidates += [base / folder / plain, base / folder / file_name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    for folder in folders:
        if not Path(file_name).suffix:
            for extension in AUDIO_EXTENSIONS:
                if (base / folder / (file_name + extension)).is_file():
                    return base / folder / (file_name + extension)
    return None


def ingest(source: Path | str, speaker: str, fmt: str = "auto", language: str = "en") -> Ingested:
    """Read a source folder or list file in ``fmt`` (``auto`` detects it)."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r} (use one of {', '.join(FORMATS)})")
    fmt = detect_format(source) if fmt == "auto" else fmt
    readers = {"ljspeech": _ljspeech, "coqui": _coqui, "sovits": _sovits, "folder": _folder}
    result = readers[fmt](source, speaker, language)
    if not result.items and not result.rejects:
        raise DatasetError(f"{source}: no audio found for format {fmt} "
                           f"(audio extensions: {', '.join(AUDIO_EXTENSIONS)})")
    return result


def _list_file(source: Path, names: tuple[str, ...]) -> Path:
    if source.is_file():
        return source
    for name in names:
        found = sorted(source.glob(name))
        if found:
            return found[0]
    raise DatasetError(f"{source}: no {' or '.join(names)} list file in this folder")


def _line_reject(list_path: Path, number: int, reason: str, detail: str) -> Reject:
    return Reject(source=f"{list_path.name}:{number}", reason=reason, detail=f"{list_path.name} line {number}: {detail}")


def _transcribed(result: Ingested, list_path: Path, number: int, base: Path, name: str, text: str,
                 language: str, folders: tuple[str, ...] = ("",)) -> None:
    """Add one metadata line's item, or the reject that explains why it cannot be used."""
    audio = _resolve(base, name, folders)
    if audio is None:
        result.rejects.append(_line_reject(list_path, number, "missing_file", f"names {name!r}, which does not exist"))
    elif not text.strip():
        result.rejects.append(_line_reject(list_path, number, "empty_transcript", f"{name!r} has an empty transcript"))
    else:
        result.items.append(SourceItem(audio=audio, name=_relative(audio, base), text=text.strip(), language=language))


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _ljspeech(source: Path, speaker: str, language: str) -> Ingested:
    list_path = _list_file(source, ("metadata.csv",))
    result = Ingested("ljspeech")
    for number, line, error in _lines(list_path):
        if line is None:
            result.rejects.append(_line_reject(list_path, number, "not_utf8", f"not UTF-8 ({error}); re-save as UTF-8"))
            continue
        fields = line.split("|")
        if len(fields) < 2:
            result.rejects.append(_line_reject(list_path, number, "bad_line", "expected id|text|normalized"))
            continue
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        _transcribed(result, list_path, number, list_path.parent, fields[0].strip(), text, language, ("wavs", ""))
    return result


def _coqui(source: Path, speaker: str, language: str) -> Ingested:
    list_path = _list_file(source, ("metadata.csv", "*.csv"))
    result = Ingested("coqui")
    lines = _lines(list_path)
    if not lines or lines[0][1] is None:
        raise DatasetError(f"{list_path}: the first line must be the header audio_file|text|speaker_name")
    header = [part.strip().lower() for part in lines[0][1].split("|")]
    if tuple(header[:2]) != COQUI_HEADER:
        raise DatasetError(f"{list_path}: the first line must be the header audio_file|text|speaker_name")
    rows = []
    for number, line, error in lines[1:]:
        if line is None:
            result.rejects.append(_line_reject(list_path, number, "not_utf8", f"not UTF-8 ({error}); re-save as UTF-8"))
            continue
        fields = line.split("|")
        if len(fields) < len(header):
            result.rejects.append(_line_reject(list_path, number, "bad_line", f"expected {'|'.join(header)}"))
            continue
        row = dict(zip(header, fields))
        rows.append((number, row))
    for number, row in _own_speaker_rows(rows, "speaker_name", speaker, list_path, result):
        _transcribed(result, list_path, number, list_path.parent, row["audio_file"].strip(), row["text"], language)
    return result


def _own_speaker_rows(rows: list[tuple[int, dict[str, str]]], column: str, speaker: str, list_path: Path,
                      result: Ingested) -> list[tuple[int, dict[str, str]]]:
    """Rows of ``speaker``; a list naming exactly one other speaker is taken as this speaker's."""
    names = {row.get(column, "").strip() for _, row in rows} - {""}
    if speaker in names or len(names) > 1:
        kept = []
        for number, row in rows:
            name = row.get(column, "").strip()
            if name and name != speaker:
                result.rejects.append(_line_reject(list_path, number, "other_speaker", f"speaker {name!r}"))
            else:
                kept.append((number, row))
        return kept
    if names:
        result.notes.append(f"{list_path.name} names speaker {names.pop()!r}: taken as {speaker!r}")
    return rows


def _sovits(source: Path, speaker: str, language: str) -> Ingested:
    list_path = _list_file(source, ("*.list",))
    result = Ingested("sovits")
    rows = []
    for number, line, error in _lines(list_path):
        if line is None:
            result.rejects.append(_line_reject(list_path, number, "not_utf8", f"not UTF-8 ({error}); re-save as UTF-8"))
            continue
        fields = line.split("|", 3)
        if len(fields) < 4:
            result.rejects.append(_line_reject(list_path, number, "bad_line", "expected path|speaker|language|text"))
            continue
        rows.append((number, {"path": fields[0].strip(), "speaker": fields[1], "language": fields[2], "text": fields[3]}))
    for number, row in _own_speaker_rows(rows, "speaker", speaker, list_path, result):
        row_language = row["language"].strip().lower() or language
        _transcribed(result, list_path, number, list_path.parent, row["path"], row["text"], row_language)
    return result


def _folder(source: Path, speaker: str, language: str) -> Ingested:
    if not source.is_dir():
        raise DatasetError(f"{source}: the folder format needs a folder")
    result = Ingested("folder")
    audio_files = sorted(
        path for path in source.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(source).parts))
    untranscribed = 0
    for audio in audio_files:
        name = audio.relative_to(source).as_posix()
        transcript = audio.with_suffix(".txt")
        if not transcript.is_file():
            untranscribed += 1
            result.items.append(SourceItem(audio=audio, name=name, text=None, language=language))
            continue
        try:
            text = " ".join(transcript.read_bytes().decode("utf-8-sig").split())
        except UnicodeDecodeError as exc:
            result.rejects.append(Reject(source=name, reason="not_utf8",
                                         detail=f"{transcript.name}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} "
                                                f"at offset {exc.start}); re-save as UTF-8"))
            continue
        if not text:
            result.rejects.append(Reject(source=name, reason="empty_transcript", detail=f"{transcript.name} is empty"))
            continue
        result.items.append(SourceItem(audio=audio, name=name, text=text, language=language))
    if untranscribed:
        result.notes.append(f"{untranscribed} file(s) without a transcript: sliced at pauses, clips have no text")
    return result
