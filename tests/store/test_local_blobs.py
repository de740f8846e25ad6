"""What only the local back-end does: temporary files of interrupted writes, and scratch copies."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openfish.store.local_blobs import LocalBlobStore
from openfish.store.scratch import scratch_copy

KEY = "lipsync/job_" + "5" * 32 + "_video.bin"


def test_a_crashed_write_is_invisible_then_discarded(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    blobs.put(KEY, b"video")
    leftover = tmp_path / "lipsync" / ".tmp-crashed"
    leftover.write_bytes(b"half a video")
    assert [info.key for info in blobs.list("lipsync")] == [KEY]
    assert blobs.discard_incomplete(datetime.now(UTC) - timedelta(hours=1)) == 0  # may still be writing
    then = time.time() - 7200
    os.utime(leftover, (then, then))
    assert blobs.discard_incomplete(datetime.now(UTC) - timedelta(hours=1)) == 1
    assert not leftover.exists()
    assert blobs.get(KEY) == b"video"


def test_a_scratch_copy_holds_the_bytes_and_goes_away(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.put(KEY, b"video bytes")
    with scratch_copy(blobs, KEY, tmp_path / "scratch") as path:
        assert path.read_bytes() == b"video bytes"
        blobs.put(KEY, b"replaced meanwhile")  # a rename: the copy keeps what it was made with
        assert path.read_bytes() == b"video bytes"
    assert not path.exists()
    assert list((tmp_path / "scratch").iterdir()) == []
