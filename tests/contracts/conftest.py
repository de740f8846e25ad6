"""Back-ends of each storage contract. Every contract test runs once per back-end listed here; a
new back-end (S3, PostgreSQL...) joins by adding its name and how to build it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openfish.store.blobs import BlobStore
from openfish.store.local_blobs import LocalBlobStore

BLOB_BACKENDS = ["local"]


@pytest.fixture(params=BLOB_BACKENDS)
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """An empty blob store of each back-end."""
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    else:  # pragma: no cover - a name without a builder is a mistake in BLOB_BACKENDS
        raise AssertionError(f"no builder for blob back-end {request.param!r}")
