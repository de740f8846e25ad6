"""Choosing the blob store from the settings: the data directory by default, S3 for ``s3://``."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfish.config import Settings
from openfish.store.blob_backends import build_blob_store
from openfish.store.local_blobs import LocalBlobStore
from openfish.store.s3_blobs import S3BlobStore
from tests.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, fresh_bucket

KEY = "tts/" + "f" * 64 + "_22050.mp3"


def test_no_url_keeps_blobs_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    blobs = build_blob_store(settings.storage, settings.data_dir)
    assert isinstance(blobs, LocalBlobStore)
    assert blobs.root == tmp_path / "blobs"


def test_an_s3_url_builds_an_s3_store_from_the_settings(tmp_path: Path, s3_endpoint: str) -> None:
    storage = {
        "url": f"s3://{fresh_bucket(s3_endpoint)}/openfish",
        "endpoint": s3_endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "allow_http": True,
        "presigned_downloads": False,
    }
    settings = Settings(data_dir=tmp_path, storage=storage)
    blobs = build_blob_store(settings.storage, settings.data_dir)
    assert isinstance(blobs, S3BlobStore)
    assert blobs.store.prefix == "openfish"
    blobs.put(KEY, b"audio")
    assert blobs.get(KEY) == b"audio"
    assert blobs.download_url(KEY, 60) is None
    assert SECRET_ACCESS_KEY not in repr(settings.storage)


def test_unset_s3_values_come_from_the_aws_environment(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = fresh_bucket(s3_endpoint)
    monkeypatch.setenv("OPENFISH_STORAGE__URL", f"s3://{bucket}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    settings = Settings(data_dir=tmp_path)
    blobs = build_blob_store(settings.storage, settings.data_dir)
    blobs.put(KEY, b"audio")
    assert blobs.get(KEY) == b"audio"
    url = blobs.download_url(KEY, 60)
    assert url is not None
    assert url.startswith(f"{s3_endpoint}/{bucket}/{KEY}?")
    assert "%2Feu-west-1%2Fs3%2F" in url  # the region signs the URL


@pytest.mark.parametrize("url", ["gs://bucket/prefix", "file:///srv/blobs", "bucket/prefix"])
def test_an_unknown_scheme_is_refused(tmp_path: Path, url: str) -> None:
    settings = Settings(data_dir=tmp_path, storage={"url": url})
    with pytest.raises(ValueError, match="unsupported scheme"):
        build_blob_store(settings.storage, settings.data_dir)


def test_an_s3_url_without_a_bucket_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage={"url": "s3://"})
    with pytest.raises(ValueError, match=r"storage\.url 's3://'"):
        build_blob_store(settings.storage, settings.data_dir)
