"""`openfish serve` as a user starts it: first start prints a working token, later starts do not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bench.server import free_port
from websockets.sync.client import connect

pytestmark = pytest.mark.slow
TOKEN_RE = re.compile(r"^(ofk_tok_\S+)$", re.MULTILINE)


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENFISH_DATA_DIR": str(data_dir), "OPENFISH_PORT": str(port), "COLUMNS": "200"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "openfish", "serve"], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not become ready:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def assert_tts_streams(base: str, token: str) -> None:
    """A long text arrives in many chunks, the first long before the last (chunked transfer)."""
    text = " ".join(["This sentence is one of several that make up a longer text."] * 8)
    started = time.monotonic()
    arrivals: list[float] = []
    size = 0
    with httpx.stream(
        "POST",
        f"{base}/speech/tts",
        headers={"Authorization": f"Bearer {token}"},
        json={"text": text, "format": "pcm"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["X-Characters-Used"] == str(len(text))
        for chunk in response.iter_raw():
            arrivals.append(time.monotonic() - started)
            size += len(chunk)
    assert len(arrivals) >= 8
    assert arrivals[0] < arrivals[-1] / 3
    assert size / 2 / 22050 > 15  # seconds of 16-bit mono audio at 22.05 kHz


def assert_realtime_tts_speaks(port: int, token: str) -> None:
    """The first account has realtime switched on; the socket speaks a clause before ``stop``."""
    with connect(
        f"ws://127.0.0.1:{port}/api/open/v1/speech/tts/live",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"event": "start", "format": "pcm"}))
        ws.send(json.dumps({"event": "text", "text": "Realtime speech works. "}))
        first = ws.recv(timeout=10)
        assert isinstance(first, bytes)
        ws.send(json.dumps({"event": "stop"}))
        while isinstance(message := ws.recv(timeout=10), bytes):
            first += message
        assert json.loads(message)["event"] == "finish"
    assert len(first) / 2 / 22050 > 0.8


def test_first_start_creates_an_account_and_prints_its_token_once(tmp_path: Path) -> None:
    port = free_port()
    first_log = tmp_path / "first.log"
    server = start_server(tmp_path / "data", port, first_log)
    try:
        wait_ready(port, server, first_log)
        token = TOKEN_RE.search(first_log.read_text())
        assert token is not None, first_log.read_text()
        base = f"http://127.0.0.1:{port}/api/open/v1"
        profile = httpx.get(f"{base}/profile", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert profile.status_code == 200
        assert profile.json()["credits"] == 100_000
        assert profile.headers["X-Request-Id"].startswith("req_")
        refused = httpx.get(f"{base}/profile", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert_tts_streams(base, token.group(1))
        assert_realtime_tts_speaks(port, token.group(1))
    finally:
        stop(server)
    assert (tmp_path / "data" / "openfish.db").exists()

    second_log = tmp_path / "second.log"
    server = start_server(tmp_path / "data", port, second_log)
    try:
        wait_ready(port, server, second_log)
        assert TOKEN_RE.search(second_log.read_text()) is None
        again = httpx.get(
            f"http://127.0.0.1:{port}/api/open/v1/profile",
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert again.status_code == 200
    finally:
        stop(server)
