"""Writing a record's model folder from the blob store (hard links where possible)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Collection, Iterator

from tts_host.errors import TTSHostError
from tts_host.speakers.blobs import link_or_copy
from tts_host.speakers.catalog import LibraryParts
from tts_host.speakers.records import (
    Record,
    check_relative_path,
)


class Materialising(LibraryParts):
    """Model folders of records, for backends and exports (mixed into ``Library``)."""

    def materialise(self, record: Record, dest: Path | str, *, roles: Collection[str] | None = None) -> Path:
        """Write ``record``'s model folder to ``dest`` (hard links where possible, else copies).

        ``dest`` must be missing or empty. The files are the library's read-only blobs: write
        new results elsewhere and add them with :meth:`add_checkpoint`. ``roles`` limits the
        folder to the files of those roles.
        """
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise TTSHostError(f"cannot materialise {record.label} into {dest}: it exists and is not an empty folder")
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for entry in self.files_of(record):
                if roles is not None and entry.role not in roles:
                    continue
                blob = self.blob_path(entry.sha256)
                if not blob.is_file():
                    raise TTSHostError(f"{record.label}: file {entry.path} is missing from the blob store (run `tts-host voices verify`)")
                link_or_copy(blob, dest / check_relative_path(entry.path, record.label))
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                for child in dest.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            raise
        return dest

    @contextmanager
    def materialised(self, record: Record) -> Iterator[Path]:
        """A temporary materialised folder of ``record``, removed afterwards."""
        with self.scratch_folder("model") as tmp:
            yield self.materialise(record, tmp / "model")

    @contextmanager
    def scratch_folder(self, purpose: str) -> Iterator[Path]:
        """An empty temporary folder on the library's disk (files made there can be stored as hard links)."""
        with tempfile.TemporaryDirectory(dir=self.blobs.tmp_dir, prefix=f"{os.getpid()}-{purpose}-") as tmp:
            yield Path(tmp)

