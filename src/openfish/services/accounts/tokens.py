"""API tokens: ``ofk_<token id>_<secret>``, of which only a SHA-256 of the secret is stored.

The token id (public) finds the row; the secret's hash is then compared in constant time, so
neither the lookup nor the comparison leaks how much of a guessed secret was right. The secret
has 256 bits of entropy, so a fast hash is enough (no password-style stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from openfish.services.runtime.ids import new_secret

TOKEN_PREFIX = "ofk"  # noqa: S105 (a public prefix, not a secret)
_TOKEN_RE = re.compile(r"^ofk_(tok_[0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ParsedToken:
    """A token split into the part that finds it and the part that proves it."""

    token_id: str
    secret: str


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def make_token(token_id: str) -> tuple[str, str]:
    """A fresh plaintext token for ``token_id`` and the hash to store."""
    secret = new_secret()
    return f"{TOKEN_PREFIX}_{token_id}_{secret}", hash_secret(secret)


def parse_token(raw: str) -> ParsedToken | None:
    """Split a presented token, or None if it is not of our shape."""
    match = _TOKEN_RE.match(raw)
    if match is None:
        return None
    return ParsedToken(token_id=match.group(1), secret=match.group(2))


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
