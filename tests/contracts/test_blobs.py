"""The blob storage contract (``openfish.store.blobs.BlobStore``), run against every back-end."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openfish.store.blobs import CHUNK_BYTES, BlobStore

KEY = "tts/" + "a" * 64 + "_22050.mp3"
DATA = bytes(range(256)) * 1000  # 256,000 bytes: several chunks


def test_put_get_stat_and_overwrite(blobs: BlobStore) -> None:
    assert not blobs.exists(KEY)
    blobs.put(KEY, DATA)
    assert blobs.exists(KEY)
    assert blobs.get(KEY) == DATA
    info = blobs.stat(KEY)
    assert (info.key, info.size) == (KEY, len(DATA))
    assert abs((datetime.now(UTC) - info.modified).total_seconds()) < 60
    blobs.put(KEY, b"replaced")
    assert blobs.get(KEY) == b"replaced"
    assert blobs.stat(KEY).size == len(b"replaced")


def test_put_file_takes_the_file_over(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "render.mp4"
    source.write_bytes(DATA)
    blobs.put_file("lipsync/job_" + "1" * 32 + ".mp4", source)
    assert not source.exists()
    assert blobs.get("lipsync/job_" + "1" * 32 + ".mp4") == DATA


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 1),
        (100, 200),
        (CHUNK_BYTES - 1, CHUNK_BYTES + 1),
        (len(DATA) - 5, None),
        (7, len(DATA) + 99),
    ],
)
def test_ranged_reads_return_exactly_the_range_in_bounded_chunks(
    blobs: BlobStore, start: int, end: int | None
) -> None:
    blobs.put(KEY, DATA)
    chunks = list(blobs.read(KEY, start, end))
    assert b"".join(chunks) == DATA[start:end]
    assert all(0 < len(chunk) <= CHUNK_BYTES for chunk in chunks)


def test_a_missing_blob_fails_before_any_byte_is_read(blobs: BlobStore) -> None:
    for call in (
        lambda: blobs.get(KEY),
        lambda: blobs.read(KEY),
        lambda: blobs.stat(KEY),
        lambda: blobs.touch(KEY),
    ):
        with pytest.raises(FileNotFoundError):
            call()
    assert not blobs.exists(KEY)  # touch never creates an empty blob


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put(KEY, DATA)
    blobs.delete(KEY)
    blobs.delete(KEY)
    assert not blobs.exists(KEY)


def test_list_names_the_complete_blobs_of_one_area(blobs: BlobStore) -> None:
    assert list(blobs.list("tts")) == []
    names = ["tts/" + c * 64 + "_22050.wav" for c in "bcd"]
    for name in names:
        blobs.put(name, name.encode())
    blobs.put("jobs/job_" + "9" * 32 + "_22050.mp3", b"other area")
    listed = {info.key: info.size for info in blobs.list("tts")}
    assert listed == {name: len(name.encode()) for name in names}


def test_touch_moves_the_last_use_forward(blobs: BlobStore) -> None:
    blobs.put(KEY, DATA)
    before = blobs.stat(KEY).modified
    blobs.touch(KEY)
    assert blobs.stat(KEY).modified >= before
    assert blobs.get(KEY) == DATA


def test_readers_never_see_half_a_blob(blobs: BlobStore) -> None:
    first, second = b"1" * 300_000, b"2" * 300_000
    blobs.put(KEY, first)
    seen: set[bytes] = set()
    done = threading.Event()

    def writer() -> None:
        for _ in range(30):
            blobs.put(KEY, second)
            blobs.put(KEY, first)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        seen.add(blobs.get(KEY))
    thread.join()
    assert seen <= {first, second}


def test_incomplete_writes_leave_nothing_listed_and_are_discarded(blobs: BlobStore) -> None:
    blobs.put(KEY, DATA)
    assert blobs.discard_incomplete(datetime.now(UTC) + timedelta(seconds=1)) == 0
    assert [info.key for info in blobs.list("tts")] == [KEY]
    assert blobs.get(KEY) == DATA


@pytest.mark.parametrize(
    "key",
    ["../secret.key", "tts/../../x.mp3", "tts/short.mp3", "TTS/" + "a" * 64 + ".mp3", "tts/" + "a" * 64],
)
def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.get(key)


def test_download_urls_are_the_back_ends_own_or_none(blobs: BlobStore) -> None:
    blobs.put(KEY, DATA)
    url = blobs.download_url(KEY, 60)
    assert url is None or url.startswith("https://") or url.startswith("http://")
