"""A file for code that can only read files (PyAV's probing, MediaPipe renders): a scratch copy of a
blob that lives as long as the ``with`` block."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openfish.store.blobs import BlobStore
from openfish.store.local_blobs import LocalBlobStore


@contextmanager
def scratch_copy(blobs: BlobStore, key: str, folder: Path) -> Iterator[Path]:
    """A file under ``folder`` holding the blob's bytes, removed when the block ends (blocking).

    A local store's blob is linked rather than copied (blobs are replaced by rename, never written
    in place, so the link keeps the bytes it was made with); any other store's is streamed down.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as directory:
        path = Path(directory) / Path(key).name
        if isinstance(blobs, LocalBlobStore):
            try:
                os.link(blobs.path_of(key), path)
            except FileNotFoundError:
                raise
            except OSError:
                _download(blobs, key, path)  # another file system: links cannot cross it
        else:
            _download(blobs, key, path)
        yield path


def _download(blobs: BlobStore, key: str, path: Path) -> None:
    with path.open("wb") as out:
        for chunk in blobs.read(key):
            out.write(chunk)
