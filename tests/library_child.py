"""A child process for the library's fault tests: adds voices, optionally stopping itself midway.

``python library_child.py HOME POINT NAME [NAME ...]`` adds each NAME as a voice on the toy
base in HOME (created if missing) with a reference clip of its own. POINT says where the
process sends itself SIGSTOP so the test can SIGKILL it there (``none`` runs through):
``staged`` (temp files written), ``leased``, ``committed`` (first blob renamed into the store)
or ``transaction`` (records written, COMMIT not yet run).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from library_backend import PRESETS, write_model  # noqa: E402
from library_fixtures import embedding, toy_host  # noqa: E402
from tts_host.speakers import Library  # noqa: E402
from tts_host.speakers import blobs as blob_module  # noqa: E402
from tts_host.speakers import library as library_module  # noqa: E402


def stop_after(owner: object, attribute: str) -> None:
    """Make ``owner.attribute`` stop this process (once) right after it returns."""
    original = getattr(owner, attribute)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        setattr(owner, attribute, original)
        os.kill(os.getpid(), signal.SIGSTOP)
        return result

    setattr(owner, attribute, wrapped)


POINTS = {
    "staged": (blob_module.BlobStore, "stage_file"),
    "leased": (library_module.Library, "_take_leases"),
    "committed": (blob_module.BlobStore, "commit"),
    "transaction": (library_module.Library, "_release_leases"),
}


def main(home: str, point: str, names: list[str]) -> None:
    lib = Library(Path(home), host=toy_host())
    base = next(iter(lib.bases()), None)
    if base is None:
        base = lib.add_base("toy", write_model(Path(home) / "base-src", PRESETS["tiny"], 0), "tiny")
    if point != "none":
        stop_after(*POINTS[point])
    for name in names:
        clip = Path(home) / f"{name}.wav"
        clip.write_bytes(name.encode() * 200_000)  # a few MB of content unique to this voice
        lib.add_voice(name, "toy", base, embedding(len(name)), [clip])
    lib.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
