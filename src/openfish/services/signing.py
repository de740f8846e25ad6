"""Expiring signed URLs for stored audio: ``?expires=<unix seconds>&sig=<HMAC-SHA256>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
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

    def verify(self, name: str, expires: int | str | None, signature: str | None) -> None:
        """Raise Forbidden unless the signature is ours and has not expired.

        ``expires`` and ``signature`` come straight from a URL: missing or malformed values (not a
        number, not ASCII, absurdly long) are refused like a wrong signature, never an error.
        """
        expiry = _parse_expiry(expires)
        if expiry is None or signature is None or not _SIGNATURE.fullmatch(signature):
            raise Forbidden("The URL's signature is missing or malformed.")
        if not hmac.compare_digest(self._signature(name, expiry).encode(), signature.encode()):
            raise Forbidden("The URL's signature is not valid.")
        if expiry < self._clock():
            raise Forbidden("The URL has expired; request it again.")

    def _signature(self, name: str, expires: int) -> str:
        self.load_or_create()
        assert self._secret is not None
        digest = hmac.new(self._secret, f"{name}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


#: What ``_signature`` produces: unpadded URL-safe base64 of a SHA-256 HMAC (43 characters).
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
_EXPIRY = re.compile(r"[0-9]{1,12}")


def _parse_expiry(value: int | str | None) -> int | None:
    if isinstance(value, int):
        return value
    if value is None or not _EXPIRY.fullmatch(value):
        return None
    return int(value)
