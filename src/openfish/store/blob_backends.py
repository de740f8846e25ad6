"""Which :class:`~openfish.store.blobs.BlobStore` a deployment uses, from its ``storage`` settings:
a directory in the data directory by default, an S3-compatible bucket for ``s3://`` URLs."""

from __future__ import annotations

from pathlib import Path

from openfish.config import StorageSettings
from openfish.store.blobs import BlobStore
from openfish.store.local_blobs import LocalBlobStore
from openfish.store.s3_blobs import S3BlobStore


def build_blob_store(storage: StorageSettings, data_dir: Path) -> BlobStore:
    """The blob store ``storage`` names; ValueError for a URL no back-end here understands."""
    if not storage.url:  # unset, or set empty in the environment
        return LocalBlobStore(data_dir / "blobs")
    scheme = storage.url.partition("://")[0]
    if scheme == "s3":
        secret = storage.secret_access_key
        return S3BlobStore.from_url(
            storage.url,
            endpoint=storage.endpoint,
            region=storage.region,
            access_key_id=storage.access_key_id,
            secret_access_key=None if secret is None else secret.get_secret_value(),
            allow_http=storage.allow_http,
            presigned_downloads=storage.presigned_downloads,
        )
    raise ValueError(
        f"storage.url {storage.url!r}: unsupported scheme {scheme!r}; use s3://bucket/prefix, "
        "or leave it unset to keep blobs in the data directory"
    )
