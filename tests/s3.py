"""An S3-compatible server for tests: moto's standalone server in a thread of the test process,
listening on a free loopback port, with a fresh bucket per test (:func:`s3_blob_store`)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from openfish.store.s3_blobs import S3BlobStore

#: moto accepts any credentials; these only have to be present so nothing looks further for them.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing-secret"
REGION = "us-east-1"


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL (``http://127.0.0.1:<port>``) of a server that lives for the block."""
    # Imported here: moto's server takes half a second to import, which only S3 tests should pay.
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # 0: any free port
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fresh_bucket(endpoint: str) -> str:
    """The name of a new, empty bucket on the server (moto takes an unsigned CreateBucket)."""
    name = f"t-{uuid.uuid4().hex}"
    httpx.put(f"{endpoint}/{name}").raise_for_status()
    return name


def s3_blob_store(endpoint: str, *, prefix: str = "blobs", presigned_downloads: bool = True) -> S3BlobStore:
    """A blob store on a fresh bucket of the server, its keys under ``prefix``."""
    return S3BlobStore.from_url(
        f"s3://{fresh_bucket(endpoint)}/{prefix}",
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        allow_http=True,
        presigned_downloads=presigned_downloads,
    )


def s3_storage(endpoint: str, *, presigned_downloads: bool = True) -> dict[str, Any]:
    """Storage settings that put an app's blobs in a fresh bucket of the server."""
    return {
        "url": f"s3://{fresh_bucket(endpoint)}/blobs",
        "endpoint": endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "allow_http": True,
        "presigned_downloads": presigned_downloads,
    }
