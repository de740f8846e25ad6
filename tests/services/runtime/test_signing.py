"""Signed URLs: only the exact signature of a name and expiry, before it expires, is accepted; the
key is the configured one or one shared through the database, which racing nodes agree on."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from openfish.config import decode_signing_key
from openfish.errors import Forbidden
from openfish.services.runtime.signing import SECRET_NAME, SigningKeyNotLoaded, UrlSigner
from openfish.store.database import Database
from openfish.store.models import ServerSecret
from tests.conftest import make_settings

NOW = 1_800_000_000


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(key=secrets.token_bytes(32), clock=lambda: NOW)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    await db.migrate()
    yield db
    await db.dispose()


async def stored_key(db: Database) -> str | None:
    async with db.session() as session:
        value: str | None = await session.scalar(
            select(ServerSecret.value).where(ServerSecret.name == SECRET_NAME)
        )
        return value


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
    signer = UrlSigner(key=secrets.token_bytes(32), clock=lambda: now[0])
    expires, signature = signer.sign("a.mp3", 60)
    now[0] += 61
    with pytest.raises(Forbidden, match="expired"):
        signer.verify("a.mp3", expires, signature)


async def test_an_unloaded_signer_refuses_to_sign_or_verify(database: Database) -> None:
    signer = UrlSigner(database, clock=lambda: NOW)
    assert not signer.loaded
    with pytest.raises(SigningKeyNotLoaded, match="load"):
        signer.sign("a.mp3", 60)
    with pytest.raises(SigningKeyNotLoaded, match="load"):
        signer.verify("a.mp3", NOW + 60, "A" * 43)
    await signer.load()
    expires, signature = signer.sign("a.mp3", 60)
    signer.verify("a.mp3", expires, signature)


def test_a_signer_needs_a_key_or_a_database_and_a_key_of_32_bytes() -> None:
    with pytest.raises(ValueError, match="key or a database"):
        UrlSigner()
    with pytest.raises(ValueError, match="32 bytes"):
        UrlSigner(key=b"short")


async def test_the_key_is_made_once_and_shared_through_the_database(database: Database) -> None:
    first = UrlSigner(database, clock=lambda: NOW)
    await first.load()
    value = await stored_key(database)
    assert value is not None
    assert len(base64.b64decode(value)) == 32
    other = UrlSigner(database, clock=lambda: NOW)
    await other.load()
    assert await stored_key(database) == value
    expires, signature = first.sign("a.mp3", 60)
    other.verify("a.mp3", expires, signature)
    await first.load()  # a second load changes nothing
    assert first.sign("a.mp3", 60) == (expires, signature)


async def test_concurrent_first_loads_agree_on_one_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    nodes = [Database(url) for _ in range(6)]
    try:
        await nodes[0].migrate()
        signers = [UrlSigner(db, clock=lambda: NOW) for db in nodes]
        await asyncio.gather(*(signer.load() for signer in signers))
        assert len({signer.sign("a.mp3", 60) for signer in signers}) == 1
        async with nodes[0].session() as session:
            rows = (await session.scalars(select(ServerSecret.name))).all()
        assert rows == [SECRET_NAME]
    finally:
        for db in nodes:
            await db.dispose()


async def test_a_legacy_key_file_seeds_the_database_so_old_urls_still_verify(
    tmp_path: Path, database: Database
) -> None:
    legacy = tmp_path / "data" / "secret.key"
    legacy.parent.mkdir()
    legacy.write_bytes(secrets.token_bytes(32))
    before = UrlSigner(key=legacy.read_bytes(), clock=lambda: NOW)  # what the per-node file signed
    expires, signature = before.sign("a.mp3", 60)

    after = UrlSigner(database, legacy_file=legacy, clock=lambda: NOW)
    await after.load()
    after.verify("a.mp3", expires, signature)
    assert await stored_key(database) == base64.b64encode(legacy.read_bytes()).decode()
    assert legacy.exists()  # left in place: nothing reads it any more, deleting it is the operator's call

    # A node without the file (another data directory) now signs with the adopted key too.
    elsewhere = UrlSigner(database, legacy_file=tmp_path / "other" / "secret.key", clock=lambda: NOW)
    await elsewhere.load()
    elsewhere.verify("a.mp3", expires, signature)


async def test_a_legacy_file_is_ignored_once_the_database_has_a_key(
    tmp_path: Path, database: Database
) -> None:
    await UrlSigner(database).load()
    value = await stored_key(database)
    legacy = tmp_path / "secret.key"
    legacy.write_bytes(secrets.token_bytes(32))
    signer = UrlSigner(database, legacy_file=legacy, clock=lambda: NOW)
    await signer.load()
    assert await stored_key(database) == value
    expires, signature = UrlSigner(key=legacy.read_bytes(), clock=lambda: NOW).sign("a.mp3", 60)
    with pytest.raises(Forbidden):
        signer.verify("a.mp3", expires, signature)


async def test_a_truncated_legacy_file_is_not_adopted(tmp_path: Path, database: Database) -> None:
    legacy = tmp_path / "secret.key"
    legacy.write_bytes(b"")  # what a start killed between creating and writing it left
    await UrlSigner(database, legacy_file=legacy).load()
    value = await stored_key(database)
    assert value is not None
    assert len(base64.b64decode(value)) == 32


async def test_a_configured_key_wins_and_the_database_is_not_touched(database: Database) -> None:
    key = secrets.token_bytes(32)
    signer = UrlSigner(database, key=key, clock=lambda: NOW)
    assert signer.loaded
    await signer.load()
    assert await stored_key(database) is None
    expires, signature = signer.sign("a.mp3", 60)
    UrlSigner(key=key, clock=lambda: NOW).verify("a.mp3", expires, signature)


KEY = bytes(range(32))


@pytest.mark.parametrize(
    "text",
    [
        KEY.hex(),
        KEY.hex().upper(),
        base64.b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        f"  {KEY.hex()}\n",  # as pasted from a file
    ],
)
def test_the_signing_key_setting_takes_hex_or_base64(tmp_path: Path, text: str) -> None:
    settings = make_settings(tmp_path, signing_key=text)
    assert settings.signing_key_bytes == KEY
    assert text.strip() not in repr(settings)
    assert decode_signing_key(text) == KEY


@pytest.mark.parametrize(
    "text",
    [
        "",
        bytes(31).hex(),  # too short
        base64.b64encode(bytes(31)).decode(),
        "not a key, not a key, not a key, not a key, not a key",
        "A" * 45,  # base64 of impossible length
    ],
)
def test_a_bad_signing_key_setting_is_refused_without_echoing_it(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValidationError, match="signing_key") as refused:
        make_settings(tmp_path, signing_key=text)
    if text:
        assert text not in str(refused.value)


def test_the_signing_key_setting_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENFISH_SIGNING_KEY", KEY.hex())
    assert make_settings(tmp_path).signing_key_bytes == KEY
    monkeypatch.setenv("OPENFISH_SIGNING_KEY", "too short")
    with pytest.raises(ValidationError, match="signing_key"):
        make_settings(tmp_path)
