"""Signed URLs across nodes: every app on one database signs with one key (or the configured one),
a pre-database ``secret.key`` keeps the URLs it signed valid, and no answer ever shows the key."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from openfish.app import create_app
from openfish.engines.registry import EngineRegistry
from openfish.services.runtime.signing import SECRET_NAME, UrlSigner
from openfish.store.models import ServerSecret
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness, make_settings
from tests.voice_clips import silence_wav

TTS = "/api/open/v1/speech/tts"
TEXT = "Signed once, fetched anywhere."


async def stored_url(harness: Harness, caller: Caller) -> str:
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": TEXT, "cache": True, "format": "wav"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["audio_url"])


def tampered(url: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["sig"] = ("A" if query["sig"][0] != "A" else "B") + query["sig"][1:]
    return f"{parts.path}?expires={query['expires']}&sig={query['sig']}"


async def test_apps_on_one_database_accept_each_others_urls(
    tmp_path: Path, harness_factory: Callable[..., Any]
) -> None:
    shared = {"url": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"}
    # Two nodes: one database, each its own data directory (so each its own legacy key file path).
    first: Harness = await harness_factory(database=shared)
    second: Harness = await harness_factory(database=shared)
    assert first.services.settings.data_dir != second.services.settings.data_dir
    caller = await first.new_caller()  # the account lives in the shared database: both know it

    url = await stored_url(first, caller)
    # The same request on the second node stores the same content-addressed file in its own store,
    # so each node can serve the other's URL once the signature holds.
    other_url = await stored_url(second, caller)
    assert urlsplit(url).path == urlsplit(other_url).path
    assert (await second.client.get(url)).status_code == 200
    assert (await first.client.get(other_url)).status_code == 200
    for node in (first, second):
        assert_v1_error(await node.client.get(tampered(url)), 403, "forbidden")

    # Control: a node on another database made its own key and refuses the URL.
    elsewhere: Harness = await harness_factory()
    assert_v1_error(await elsewhere.client.get(url), 403, "forbidden")


async def test_a_configured_key_is_used_instead_of_the_databases(harness_factory: Callable[..., Any]) -> None:
    key = secrets.token_bytes(32)
    # Separate databases, one configured key: that key alone decides.
    first: Harness = await harness_factory(signing_key=base64.b64encode(key).decode())
    second: Harness = await harness_factory(signing_key=key.hex())
    caller = await first.new_caller()
    url = await stored_url(first, caller)
    await stored_url(second, await second.new_caller())
    assert (await second.client.get(url)).status_code == 200
    assert_v1_error(await second.client.get(tampered(url)), 403, "forbidden")
    async with first.services.db.session() as session:
        assert await session.scalar(select(ServerSecret).where(ServerSecret.name == SECRET_NAME)) is None


async def test_urls_signed_with_the_legacy_key_file_still_verify(
    tmp_path: Path, engines: EngineRegistry
) -> None:
    settings = make_settings(tmp_path)
    legacy = settings.data_dir / "secret.key"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(secrets.token_bytes(32))  # what an earlier version made on its first start
    before = UrlSigner(key=legacy.read_bytes())

    app = create_app(settings, engines)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        harness = Harness(app=app, client=client)
        url = urlsplit(await stored_url(harness, await harness.new_caller()))
        name = url.path.rsplit("/", 1)[1]
        expires, sig = before.sign(name, 600)  # as the per-node file signed it before the upgrade
        old = await client.get(url.path, params={"expires": expires, "sig": sig})
        assert old.status_code == 200
        await client.aclose()
    assert legacy.exists()


async def test_the_key_appears_in_no_schema_or_answer(harness_factory: Callable[..., Any]) -> None:
    configured = secrets.token_bytes(32)
    for overrides in ({}, {"signing_key": configured.hex()}):
        harness: Harness = await harness_factory(**overrides)
        caller = await harness.new_caller()
        async with harness.services.db.session() as session:
            value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == SECRET_NAME))
        key = configured if overrides else base64.b64decode(str(value))
        forms = {
            key.hex(),
            key.hex().upper(),
            base64.b64encode(key).decode().rstrip("="),
            base64.urlsafe_b64encode(key).decode().rstrip("="),
        }
        answers = [
            await harness.client.get("/api/openapi.json"),
            await harness.client.get("/healthz"),
            await harness.client.get("/readyz"),
            await harness.client.get("/api/open/v1/profile", headers=caller.headers),
            await harness.client.post(
                TTS, headers=caller.headers, json={"text": TEXT, "cache": True, "format": "wav"}
            ),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.request.url
            text = answer.text + str(answer.headers)
            assert not any(form in text for form in forms), answer.request.url


async def test_links_handed_out_name_the_public_url_so_any_node_recognises_them(
    harness_factory: Callable[..., Any],
) -> None:
    # Clients reach the nodes as https://speech.example.com (a balancer); this node as testserver.
    public = "https://speech.example.com"
    harness: Harness = await harness_factory(public_url=public)
    caller = await harness.new_caller()
    audio_url = await stored_url(harness, caller)
    assert audio_url.startswith(f"{public}/api/open/v1/")
    wav = silence_wav(1.0)
    uploaded = await harness.client.post(
        "/api/open/v1/files", headers=caller.headers, files={"file": ("a.wav", wav)}
    )
    assert uploaded.status_code == 201, uploaded.text
    file_url = uploaded.json()["url"]
    assert file_url.startswith(f"{public}/api/open/v1/files/")
    # Handed back as a media URL, it is this deployment's own file (external fetches are off, so
    # a URL naming the host the request came in on, not the public one, would be refused).
    transcribed = await harness.client.post(
        "/api/open/v1/speech/transcriptions", headers=caller.headers, json={"audioUrl": file_url}
    )
    assert transcribed.status_code == 200, transcribed.text
    path = urlsplit(file_url).path
    assert (await harness.client.get(path, headers=caller.headers)).content == wav
    audio_path = urlsplit(audio_url)
    fetched = await harness.client.get(f"{audio_path.path}?{audio_path.query}")
    assert fetched.status_code == 200
