"""Signed URLs: only the exact signature of a name and expiry, before it expires, is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfish.errors import Forbidden
from openfish.services.signing import UrlSigner

NOW = 1_800_000_000


@pytest.fixture
def signer(tmp_path: Path) -> UrlSigner:
    return UrlSigner(tmp_path / "secret.key", clock=lambda: NOW)


def test_a_fresh_signature_verifies_with_the_expiry_as_text_or_number(signer: UrlSigner) -> None:
    expires, signature = signer.sign("a.mp3", 60)
    signer.verify("a.mp3", expires, signature)
    signer.verify("a.mp3", str(expires), signature)


@pytest.mark.parametrize(
    ("expires", "signature"),
    [
        (None, "sig"),
        ("soon", "sig"),
        ("1.5", "sig"),
        ("٣٣٣", "sig"),  # Arabic-Indic digits: int() would take them, a URL never carries them
        ("9" * 5000, "sig"),
        ("ok", None),
        ("ok", "é" * 43),
        ("ok", "A" * 42),
        ("ok", "A" * 44),
        ("ok", "A" * 42 + "="),
    ],
)
def test_malformed_parts_are_forbidden(signer: UrlSigner, expires: str | None, signature: str | None) -> None:
    valid_expires, valid_signature = signer.sign("a.mp3", 60)
    with pytest.raises(Forbidden):
        signer.verify(
            "a.mp3",
            str(valid_expires) if expires == "ok" else expires,
            valid_signature if signature == "sig" else signature,
        )


def test_another_name_or_expiry_is_forbidden(signer: UrlSigner) -> None:
    expires, signature = signer.sign("a.mp3", 60)
    with pytest.raises(Forbidden):
        signer.verify("b.mp3", expires, signature)
    with pytest.raises(Forbidden):
        signer.verify("a.mp3", expires + 1, signature)


def test_an_expired_signature_is_forbidden(tmp_path: Path) -> None:
    now = [float(NOW)]
    signer = UrlSigner(tmp_path / "secret.key", clock=lambda: now[0])
    expires, signature = signer.sign("a.mp3", 60)
    now[0] += 61
    with pytest.raises(Forbidden, match="expired"):
        signer.verify("a.mp3", expires, signature)
