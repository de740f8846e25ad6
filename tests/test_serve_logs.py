"""`openfish serve` at debug level keeps every secret a client sends out of its log: tokens in the
query of realtime sockets, signatures of download URLs, webhook secrets, wrong tokens."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from bench.server import free_port
from websockets.sync.client import ClientConnection, connect

from tests.test_logs import legacy_calls_recipe, run_recipe
from tests.test_serve import TOKEN_RE, start_server, stop, wait_ready

LEGACY_TTS = "/api/open/tts/live"
V1_TTS = "/api/open/v1/speech/tts/live"
V1_ASR = "/api/open/v1/speech/transcriptions/live"
# Well formed (so it reaches the database lookup) but issued to no one.
WRONG_TOKEN = "ofk_tok_" + "0" * 32 + "_" + "W" * 43

pytestmark = pytest.mark.slow  # one server start with its engines: 12-26 s here


def events_until(ws: ClientConnection, last: str) -> list[dict[str, Any]]:
    """The JSON events (audio frames skipped) up to and including the one named ``last``."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = ws.recv(timeout=20)
        if isinstance(frame, bytes):
            continue
        seen.append(json.loads(frame))
        if seen[-1]["event"] in (last, "error"):
            return seen


def http_session(base: str, token: str) -> list[str]:
    """Authenticated and refused calls, a cached TTS and its signed URL; returns the secrets seen."""
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base}/profile", headers=auth).status_code == 200
    assert httpx.get(f"{base}/profile", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 401
    hooked = httpx.post(f"{base}/profile", headers=auth, json={"webhookUrl": "https://hooks.example.com/x"})
    assert hooked.status_code == 200, hooked.text
    webhook_secret = hooked.json()["webhookSecret"]
    assert webhook_secret.startswith("whsec_")

    stored = httpx.post(
        f"{base}/speech/tts",
        headers=auth,
        json={"text": "Keep it secret.", "format": "wav", "cache": True},
        timeout=60,
    )
    assert stored.status_code == 200, stored.text
    url = stored.json()["audio_url"]
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    assert httpx.get(url).status_code == 200
    forged = "f" * len(sig) if sig[0] != "f" else "0" * len(sig)
    assert httpx.get(url.replace(sig, forged)).status_code == 403
    return [webhook_secret, sig, forged]


def socket_sessions(port: int, token: str) -> None:
    """The legacy socket logged in by ``?token=``, v1 sockets with a token in the query as well."""
    ws_base = f"ws://127.0.0.1:{port}"
    with connect(f"{ws_base}{LEGACY_TTS}?token={token}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["event"] == "connected"
        ws.send(json.dumps({"event": "start", "reference_id": "en_US-joe-medium", "format": "pcm"}))
        assert json.loads(ws.recv(timeout=10))["event"] == "ready"
        ws.send(json.dumps({"event": "text", "text": "Hello from the old days"}))
        assert events_until(ws, "done")[-1]["event"] == "done"
        ws.send(json.dumps({"event": "stop"}))
        assert events_until(ws, "stopped")[-1]["event"] == "stopped"

    with connect(f"{ws_base}{LEGACY_TTS}?token={WRONG_TOKEN}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"

    # v1 takes the token from the header only; one in the query is refused, yet still in the URL.
    with connect(f"{ws_base}{V1_TTS}?token={token}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"

    headers = {"Authorization": f"Bearer {token}"}
    with connect(f"{ws_base}{V1_ASR}?token={token}", additional_headers=headers, open_timeout=10) as ws:
        ws.send(json.dumps({"event": "start", "language": "en", "sample_rate": 16000}))
        ws.send(bytes(2 * 16000 // 2))  # half a second of silence
        ws.send(json.dumps({"event": "stop"}))
        assert events_until(ws, "finish")[-1]["event"] == "finish"


def test_no_secret_reaches_the_server_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENFISH_LOG_LEVEL", "debug")
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(tmp_path / "data", port, log)
    try:
        wait_ready(port, server, log)
        found = TOKEN_RE.search(log.read_text())
        assert found is not None, log.read_text()
        token = found.group(1)
        secrets = [token, token.rsplit("_", 1)[1], WRONG_TOKEN, WRONG_TOKEN.rsplit("_", 1)[1]]
        secrets += http_session(f"http://127.0.0.1:{port}/api/open/v1", token)
        socket_sessions(port, token)
        auth = {"Authorization": f"Bearer {token}"}
        account = httpx.get(f"http://127.0.0.1:{port}/api/open/v1/profile", headers=auth).json()["user_id"]
        legacy = httpx.post(f"http://127.0.0.1:{port}/api/open/list-models", headers=auth, json={})
        assert legacy.status_code == 200, legacy.text
        assert legacy.headers["Deprecation"].startswith("@")
    finally:
        stop(server)

    text = log.read_text()
    # The first start shows the operator the new token once, on the console, before serving.
    console, served = text.split("openfish listening on", 1)
    assert text.count(token) == 1
    assert token in console
    leaked = [secret for secret in secrets if secret in served]
    assert not leaked, f"secrets in the log: {leaked}\n{served}"
    # The log still says what happened, with request ids and the query's shape.
    handshake = re.compile(
        r"\[req_[0-9a-f]+\] .*\"WebSocket /api/open/tts/live\?token=\[redacted\]\" \[accepted\]"
    )
    assert handshake.search(served), served
    assert f'"WebSocket {V1_TTS}?token=[redacted]"' in served
    assert f'"WebSocket {V1_ASR}?token=[redacted]"' in served
    assert re.search(r"openfish\.access \[req_\w+\] GET /api/open/v1/audio/\S+ 403 ", served), served
    assert re.search(r"openfish\.access \[req_\w+\] POST /api/open/v1/profile 200 ", served), served
    # Access lines name the account a token was accepted for (never the token), so the migration
    # guide's recipe counts the legacy calls per account: the socket (closed at once when its token
    # was wrong, so no account) and list-models.
    assert re.search(rf"POST /api/open/v1/profile 200 \S+ account={account}$", served, re.M), served
    assert re.search(r"GET /api/open/v1/profile 401 \S+ account=-$", served, re.M), served
    counted = run_recipe(legacy_calls_recipe(), tmp_path)
    assert {line.split()[1]: int(line.split()[0]) for line in counted.splitlines()} == {
        f"account={account}": 2,
        "account=-": 1,
    }, counted
