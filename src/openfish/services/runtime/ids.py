"""Identifiers and secrets."""

from __future__ import annotations

import secrets
import uuid


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``user_3f9c...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def new_secret() -> str:
    """256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(32)
