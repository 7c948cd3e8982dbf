"""A child process for the library's fault tests: adds voices, optionally stopping itself midway.

``python library_child.py HOME POINT NAME [NAME ...]`` adds each NAME as a voice on the toy
base in HOME (created if missing) with a reference clip of its own. POINT says where the
process sends itself SIGSTOP so the test can SIGKILL it there (``none`` runs through; the
others are listed in :data:`POINTS`).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))

from library_backend import PRESETS, write_model  # noqa: E402
from library_fixtures import embedding, toy_host  # noqa: E402
from tts_host.errors import TTSHostError  # noqa: E402
from tts_host.speakers import Library  # noqa: E402
from tts_host.speakers import blobs as blob_module  # noqa: E402


def stop_after(owner: object, attribute: str, when: Callable[..., bool] = lambda *args: True,
               before: bool = False) -> None:
    """Make ``owner.attribute`` stop this process (once) right after (or before) a call for which ``when`` holds."""
    original = getattr(owner, attribute)

    def wrapped(*args, **kwargs):
        if before and when(*args):
            setattr(owner, attribute, original)
            os.kill(os.getpid(), signal.SIGSTOP)
        result = original(*args, **kwargs)
        if not before and when(*args):
            setattr(owner, attribute, original)
            os.kill(os.getpid(), signal.SIGSTOP)
        return result

    setattr(owner, attribute, wrapped)


def _under(folder: str) -> Callable[..., bool]:
    """A test on a call's arguments: is one of them a path inside the library folder ``folder``?"""
    return lambda *args: any(f"{os.sep}library{os.sep}{folder}{os.sep}" in str(arg) for arg in args)


# Where a voice add can be killed: public calls of the blob store, and the file-system calls the
# library makes between them (no private method is patched).
POINTS = {
    "staged": (blob_module.BlobStore, "stage_file", lambda *args: True),  # temp file written and fsynced
    "leased": (os, "chmod", _under("tmp")),  # leases taken, the first blob about to be renamed into place
    "committed": (blob_module.BlobStore, "commit", lambda *args: True),  # first blob in the store
    # inside the transaction: a record file written, no COMMIT yet
    "transaction": (os, "replace", lambda source, target: _under("records")(target)),
    "streamed": (blob_module.BlobStore, "stage_stream", lambda *args: True),  # an archive member staged
    "unlinked": (os, "unlink", _under("blobs")),  # gc: the first unused blob deleted
}
# A change committed, its record file not yet settled (about to be removed): remove and rename.
SETTLING = (os, "unlink", lambda path, *rest: _under("records")(path) and f"{os.sep}pending{os.sep}" not in str(path))
ACTION = "LIBRARY_CHILD_ACTION"  # add (the default), gc, remove, rename, or import:ARCHIVE


def main(home: str, point: str, names: list[str]) -> None:
    lib = Library(Path(home), host=toy_host())
    base = next(iter(lib.bases()), None)
    if base is None:
        base = lib.add_base("toy", write_model(Path(home) / "base-src", PRESETS["tiny"], 0), "tiny")
    clips = {}
    for name in names:
        clips[name] = Path(home) / f"{name}.wav"
        clips[name].write_bytes(name.encode() * 200_000)  # a few MB of content unique to this voice
    fsyncs = count_fsyncs(point)
    if point in POINTS:
        stop_after(*POINTS[point])
    elif point == "settling":
        stop_after(*SETTLING, before=True)
    action = os.environ.get(ACTION, "add")
    try:
        if action == "gc":
            lib.gc()
        elif action == "remove":
            lib.remove_voice(names[0])
        elif action == "rename":
            lib.rename_voice(names[0], names[1])
        elif action.startswith("import:"):
            lib.import_voice(action.split(":", 1)[1], names[0])
        else:
            for name in names:
                lib.add_voice(name, "toy", base, embedding(len(name)), [clips[name]])
    except TTSHostError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
    lib.close()
    if point == "count-fsyncs":
        print(fsyncs[0])


def count_fsyncs(point: str) -> list[int]:
    """Count ``os.fsync`` calls; with POINT ``enospc:K`` the K-th one fails as a full disk would."""
    count = [0]
    fail_at = int(point.split(":")[1]) if point.startswith("enospc:") else 0
    original = os.fsync

    def fsync(fd: int) -> None:
        count[0] += 1
        if count[0] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(fd)

    os.fsync = fsync
    return count


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
