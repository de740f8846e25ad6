"""Expiring signed URLs for stored audio: ``?expires=<unix seconds>&sig=<HMAC-SHA256>``.

Every node of one deployment must sign with the same key, or a URL issued by one node is refused by
the next. The key is, in order: the ``signing_key`` setting; else the ``url_signing`` row of
``server_secrets``, made on first use by whichever node gets there first (an insert-if-absent, then
a read back, so racing nodes agree); a deployment that signed with the old per-node file
``data/secret.key`` seeds that row with the file's bytes, so URLs it issued stay valid.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from openfish.errors import Forbidden
from openfish.store.database import Database, insert_if_absent
from openfish.store.models import ServerSecret, utcnow

SECRET_BYTES = 32
#: The ``server_secrets`` row that holds the URL-signing key.
SECRET_NAME = "url_signing"  # noqa: S105 (a row name, not a secret)

logger = logging.getLogger("openfish.signing")
#: The stored key's row, read at load and after the insert-if-absent.
_STORED_KEY = select(ServerSecret.value).where(ServerSecret.name == SECRET_NAME)


class SigningKeyNotLoaded(RuntimeError):
    """``sign`` or ``verify`` was called before :meth:`UrlSigner.load` (a start-up bug)."""


class UrlSigner:
    """Signs and checks (name, expiry) pairs with the deployment's shared key.

    Give ``key`` to sign with it at once (a configured key, or a test's); otherwise give ``db`` and
    ``await load()`` once at start, after migrations. ``legacy_file`` is the pre-database per-node
    key file, adopted only while the database holds no key yet.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        key: bytes | None = None,
        legacy_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is None and db is None:
            raise ValueError("UrlSigner needs a key or a database to keep one in")
        if key is not None and len(key) < SECRET_BYTES:
            raise ValueError(f"a signing key needs at least {SECRET_BYTES} bytes")
        self._db = db
        self._legacy_file = legacy_file
        self._clock = clock
        self._key = key

    @property
    def loaded(self) -> bool:
        """Whether the key is known, so ``sign`` and ``verify`` may be called."""
        return self._key is not None

    async def load(self) -> None:
        """Read the shared key from the database, storing one first if there is none (idempotent)."""
        if self._key is not None:
            return
        assert self._db is not None  # the constructor requires a key or a database
        stored = await self._read()
        if stored is None:
            stored = await self._store_if_absent()
        self._key = _decode_stored(stored)

    def sign(self, name: str, ttl_seconds: int) -> tuple[int, str]:
        """``(expires, signature)`` for ``name``, valid for ``ttl_seconds``."""
        expires = int(self._clock()) + ttl_seconds
        return expires, self._signature(name, expires)

    def verify(self, name: str, expires: int | str | None, signature: str | None) -> None:
        """Raise Forbidden unless the signature is ours and has not expired.

        ``expires`` and ``signature`` come straight from a URL: missing or malformed values (not a
        number, not ASCII, absurdly long) are refused like a wrong signature, never an error.
        """
        key = self._loaded_key()  # before any parsing: an unloaded signer is a bug, not a 403
        expiry = _parse_expiry(expires)
        if expiry is None or signature is None or not _SIGNATURE.fullmatch(signature):
            raise Forbidden("The URL's signature is missing or malformed.")
        if not hmac.compare_digest(_hmac(key, name, expiry).encode(), signature.encode()):
            raise Forbidden("The URL's signature is not valid.")
        if expiry < self._clock():
            raise Forbidden("The URL has expired; request it again.")

    def _signature(self, name: str, expires: int) -> str:
        return _hmac(self._loaded_key(), name, expires)

    def _loaded_key(self) -> bytes:
        if self._key is None:
            raise SigningKeyNotLoaded("the URL-signing key is not loaded: await UrlSigner.load() at start")
        return self._key

    async def _read(self) -> str | None:
        assert self._db is not None
        async with self._db.session() as session:
            value: str | None = await session.scalar(_STORED_KEY)
            return value

    async def _store_if_absent(self) -> str:
        """Insert a key unless another node already did, then read back whichever one won."""
        assert self._db is not None
        candidate = await asyncio.to_thread(_legacy_key, self._legacy_file)
        adopting = candidate is not None
        if candidate is None:
            candidate = secrets.token_bytes(SECRET_BYTES)
        async with self._db.transaction() as session:
            # ON CONFLICT DO NOTHING (both supported databases speak it) rather than catching an
            # IntegrityError: a racing node's row makes this a no-op, and the read below sees it.
            values = {
                "name": SECRET_NAME,
                "value": base64.b64encode(candidate).decode(),
                "created_at": utcnow(),
            }
            inserted = await insert_if_absent(session, ServerSecret, values, key=["name"])
            stored = await session.scalar(_STORED_KEY)
        if stored is None:
            raise RuntimeError("the URL-signing key was neither stored nor found")
        if adopting and inserted:
            logger.info(
                "URL-signing key: adopted %s into the database (the file is no longer read)",
                self._legacy_file,
            )
        return stored


def _legacy_key(path: Path | None) -> bytes | None:
    """The pre-database key file's bytes, if there is a usable one."""
    if path is None or not path.is_file():
        return None
    key = path.read_bytes()
    if len(key) < SECRET_BYTES:
        # Only a start interrupted while writing it leaves it short: not worth keeping as a key.
        logger.warning("URL-signing key: ignoring %s (%d bytes, fewer than %d)", path, len(key), SECRET_BYTES)
        return None
    return key


def _decode_stored(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise RuntimeError(f"server_secrets.{SECRET_NAME} is not base64") from None
    if len(key) < SECRET_BYTES:
        raise RuntimeError(f"server_secrets.{SECRET_NAME} holds fewer than {SECRET_BYTES} bytes")
    return key


def _hmac(key: bytes, name: str, expires: int) -> str:
    digest = hmac.new(key, f"{name}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


#: What ``_hmac`` produces: unpadded URL-safe base64 of a SHA-256 HMAC (43 characters).
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
_EXPIRY = re.compile(r"[0-9]{1,12}")


def _parse_expiry(value: int | str | None) -> int | None:
    if isinstance(value, int):
        return value
    if value is None or not _EXPIRY.fullmatch(value):
        return None
    return int(value)
