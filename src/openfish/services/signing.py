"""Expiring signed URLs for stored audio: ``?expires=<unix seconds>&sig=<HMAC-SHA256>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from openfish.errors import Forbidden

SECRET_BYTES = 32


class UrlSigner:
    """Signs and checks (name, expiry) pairs with a server secret kept in the data directory."""

    def __init__(self, secret_file: Path, clock: Callable[[], float] = time.time) -> None:
        self._secret_file = secret_file
        self._clock = clock
        self._secret: bytes | None = None

    def load_or_create(self) -> None:
        """Read the secret, creating it (mode 0600) on the first start."""
        if self._secret is not None:
            return
        if not self._secret_file.exists():
            self._secret_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self._secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(secrets.token_bytes(SECRET_BYTES))
        self._secret = self._secret_file.read_bytes()

    def sign(self, name: str, ttl_seconds: int) -> tuple[int, str]:
        """``(expires, signature)`` for ``name``, valid for ``ttl_seconds``."""
        expires = int(self._clock()) + ttl_seconds
        return expires, self._signature(name, expires)

    def verify(self, name: str, expires: int, signature: str) -> None:
        """Raise Forbidden unless the signature is ours and has not expired."""
        if not hmac.compare_digest(self._signature(name, expires), signature):
            raise Forbidden("The audio URL's signature is not valid.")
        if expires < self._clock():
            raise Forbidden("The audio URL has expired; request the audio again.")

    def _signature(self, name: str, expires: int) -> str:
        self.load_or_create()
        assert self._secret is not None
        digest = hmac.new(self._secret, f"{name}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
