"""What only the S3 back-end does (the contract itself runs in ``tests/contracts/test_blobs.py``):
presigned download URLs, keys under the URL's prefix, touch's leftovers, and its errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import obstore
import pytest
from obstore.store import S3Store

from openfish.store.blobs import CHUNK_BYTES
from openfish.store.s3_blobs import BlobStoreError, S3BlobStore
from tests.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, fresh_bucket, s3_blob_store

KEY = "tts/" + "e" * 64 + "_22050.mp3"
DATA = bytes(range(256)) * 400


@pytest.fixture
def blobs(s3_endpoint: str) -> S3BlobStore:
    """A blob store on a fresh bucket."""
    return s3_blob_store(s3_endpoint)


def _bucket_root(endpoint: str, bucket: str) -> S3Store:
    """The bucket without a prefix, as obstore sees it; no retries, so failures come at once."""
    return S3Store(
        bucket,
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )


def test_a_download_url_is_a_presigned_get_of_the_blob(blobs: S3BlobStore) -> None:
    blobs.put(KEY, DATA)
    url = blobs.download_url(KEY, 60)
    assert url is not None
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=60" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == DATA


def test_a_download_url_lasts_at_most_what_s3_allows(blobs: S3BlobStore) -> None:
    blobs.put(KEY, DATA)
    url = blobs.download_url(KEY, 30 * 86_400)
    assert url is not None
    assert f"X-Amz-Expires={7 * 86_400}" in url


def test_a_missing_blob_has_no_download_url(blobs: S3BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        blobs.download_url(KEY, 60)


def test_without_presigned_downloads_the_app_serves_the_bytes(s3_endpoint: str) -> None:
    blobs = s3_blob_store(s3_endpoint, presigned_downloads=False)
    blobs.put(KEY, DATA)
    assert blobs.download_url(KEY, 60) is None


def test_keys_live_under_the_urls_prefix(s3_endpoint: str) -> None:
    bucket = fresh_bucket(s3_endpoint)
    blobs = S3BlobStore.from_url(
        f"s3://{bucket}/deploy/one",
        endpoint=s3_endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        allow_http=True,
    )
    blobs.put(KEY, DATA)
    root = _bucket_root(s3_endpoint, bucket)
    assert [meta["path"] for batch in obstore.list(root) for meta in batch] == [f"deploy/one/{KEY}"]
    assert [info.key for info in blobs.list("tts")] == [KEY]


def test_a_range_of_a_missing_blob_fails_before_any_byte_is_read(blobs: S3BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        blobs.read(KEY, 5, 10)
    blobs.put(KEY, DATA)
    assert list(blobs.read(KEY, 7, 7)) == []
    assert list(blobs.read(KEY, len(DATA) + 1)) == []


def test_a_touch_restamps_the_object(blobs: S3BlobStore) -> None:
    blobs.put(KEY, DATA)
    before = blobs.stat(KEY).modified
    time.sleep(1.1)  # S3 stamps objects to the second
    blobs.touch(KEY)
    assert blobs.stat(KEY).modified > before
    assert blobs.get(KEY) == DATA


def test_a_touch_leaves_nothing_and_a_crashed_one_is_discarded(blobs: S3BlobStore) -> None:
    blobs.put(KEY, DATA)
    blobs.touch(KEY)
    assert blobs.discard_incomplete(datetime.now(UTC) + timedelta(minutes=1)) == 0
    obstore.put(blobs.store, ".touch/crashed", DATA)  # what a touch interrupted between its copies leaves
    assert [info.key for info in blobs.list("tts")] == [KEY]
    assert blobs.discard_incomplete(datetime.now(UTC) - timedelta(hours=1)) == 0  # may be in flight
    # The server's clock stamps objects, so age the cutoff instead of the object.
    assert blobs.discard_incomplete(datetime.now(UTC) + timedelta(minutes=1)) == 1
    assert [meta["path"] for batch in obstore.list(blobs.store) for meta in batch] == [KEY]


def test_a_large_file_is_uploaded_in_parts_and_taken_over(blobs: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "render.mp4"
    data = DATA * 60  # 6 MiB: over obstore's 5 MiB part size
    source.write_bytes(data)
    key = "lipsync/job_" + "2" * 32 + ".mp4"
    blobs.put_file(key, source)
    assert not source.exists()
    assert blobs.stat(key).size == len(data)
    chunks = list(blobs.read(key))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= CHUNK_BYTES


def test_a_missing_bucket_is_an_error_not_a_missing_blob(s3_endpoint: str, tmp_path: Path) -> None:
    blobs = S3BlobStore(_bucket_root(s3_endpoint, "no-such-bucket"))
    source = tmp_path / "render.mp4"
    source.write_bytes(DATA)
    for write in (
        lambda: blobs.put(KEY, DATA),
        lambda: blobs.put_file(KEY, source),
        lambda: list(blobs.list("tts")),
    ):
        with pytest.raises(BlobStoreError, match="NoSuchBucket") as raised:
            write()
        assert not isinstance(raised.value, FileNotFoundError)
    assert source.exists()  # a failed upload keeps its source


def test_an_unreachable_store_raises_an_os_error() -> None:
    blobs = S3BlobStore(_bucket_root("http://127.0.0.1:9", "bucket"))  # the discard port: closed
    with pytest.raises(BlobStoreError) as raised:
        blobs.get(KEY)
    assert isinstance(raised.value, OSError)
    assert "127.0.0.1:9" in str(raised.value)
