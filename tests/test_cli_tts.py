"""`openfish tts` against a real `openfish serve` (and a fake server whose stream breaks off)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.server import free_port
from typer.testing import CliRunner

from openfish.audio.decode import decode_audio
from openfish.cli import app

pytestmark = pytest.mark.slow
TOKEN_RE = re.compile(r"^(ofk_tok_\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Server:
    """A running `openfish serve` and the token its first start printed."""

    url: str
    token: str


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not become ready:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tts-server")
    port = free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "OPENFISH_DATA_DIR": str(root / "data"),
        "OPENFISH_PORT": str(port),
        "COLUMNS": "200",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "openfish", "serve"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        token = TOKEN_RE.search(log.read_text())
        assert token is not None, log.read_text()
        yield Server(url=url, token=token.group(1))
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OPENFISH_SERVER", "OPENFISH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def tts(
    runner: CliRunner, server: Server, *args: str, token: str | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run `openfish tts ARGS` in-process; return its exit code, stdout and stderr."""
    result = runner.invoke(
        app,
        ["tts", "--server", server.url, "--token", token or server.token, *args],
        input=stdin,
    )
    return result.exit_code, result.stdout, result.stderr


def leftovers(directory: Path) -> list[str]:
    """Temporary files the command left behind."""
    return [path.name for path in directory.iterdir() if path.name.endswith(".part")]


def test_writes_mp3_and_reports_usage(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "hello.mp3"
    code, out, err = tts(runner, server, "Hello there, how are you today?", "-o", str(target))
    assert code == 0, err
    audio = decode_audio(target.read_bytes())
    assert audio.duration_seconds > 0.3
    assert f"{target.stat().st_size:,} bytes" in out
    assert "31 characters" in out
    assert "31 credits used" in out
    assert "quota remaining" in out
    assert leftovers(tmp_path) == []


def test_format_is_inferred_from_the_extension(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "hello.wav"
    code, out, err = tts(runner, server, "Hello", "-o", str(target))
    assert code == 0, err
    assert target.read_bytes()[:4] == b"RIFF"
    assert "of wav" in out


def test_text_from_stdin(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "stdin.opus"
    code, _out, err = tts(runner, server, "-", "-o", str(target), stdin="Read from standard input.\n")
    assert code == 0, err
    assert target.read_bytes()[:4] == b"OggS"
    assert decode_audio(target.read_bytes()).duration_seconds > 0.3


def test_text_from_a_file(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    source = tmp_path / "speech.txt"
    source.write_text("Read from a file.", encoding="utf-8")
    target = tmp_path / "file.pcm"
    code, out, err = tts(runner, server, "--file", str(source), "-o", str(target))
    assert code == 0, err
    assert "17 characters" in out
    assert target.stat().st_size > 0.3 * 22050 * 2  # 16-bit mono at 22.05 kHz


def test_invalid_option_shows_the_servers_message(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "fast.mp3"
    code, _out, err = tts(runner, server, "Hello", "--speed", "5", "-o", str(target))
    assert code == 1
    assert "speed" in err
    assert "requestId: req_" in err
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_token_is_refused(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "nope.mp3"
    code, _out, err = tts(runner, server, "Hello", "-o", str(target), token="ofk_tok_nope")
    assert code == 1
    assert "unauthorized" in err
    assert "requestId: req_" in err
    assert list(tmp_path.iterdir()) == []


def test_token_and_server_come_from_the_environment(
    runner: CliRunner, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENFISH_SERVER", server.url)
    monkeypatch.setenv("OPENFISH_TOKEN", server.token)
    target = tmp_path / "env.mp3"
    result = runner.invoke(app, ["tts", "Hello", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert target.stat().st_size > 0


def test_failed_request_keeps_an_existing_file(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    target = tmp_path / "keep.mp3"
    target.write_bytes(b"previous")
    code, _out, _err = tts(runner, server, "Hello", "--speed", "0.1", "-o", str(target))
    assert code == 1
    assert target.read_bytes() == b"previous"


def test_unreachable_server(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "x.mp3"
    dead = Server(url=f"http://127.0.0.1:{free_port()}", token="ofk_tok_x")
    code, _out, err = tts(runner, dead, "Hello", "-o", str(target))
    assert code == 1
    assert "cannot reach the server" in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def breaking_server() -> Iterator[Server]:
    """A server that starts a chunked 200 audio response and closes the connection half-way."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port: int = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            declared = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            assert declared is not None
            length = int(declared.group(1))
            while len(rest) < length:
                rest += conn.recv(65536)
            chunk = b"\xff\xf3" * 2000
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ntransfer-encoding: chunked\r\n"
                b"x-request-id: req_broken\r\nx-characters-used: 5\r\n\r\n"
                + f"{len(chunk):x}\r\n".encode()
                + chunk
                + b"\r\n"
            )

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        yield Server(url=f"http://127.0.0.1:{port}", token="ofk_tok_x")
    finally:
        thread.join(timeout=10)
        listener.close()


def test_broken_stream_leaves_no_file(runner: CliRunner, breaking_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "broken.mp3"
    code, _out, err = tts(runner, breaking_server, "Hello", "-o", str(target))
    assert code == 1
    assert "broke off after 4,000 bytes" in err
    assert "req_broken" in err
    assert "incomplete" in err
    assert list(tmp_path.iterdir()) == []


def test_transcribe_prints_what_tts_said(runner: CliRunner, server: Server, tmp_path: Path) -> None:
    spoken = tmp_path / "spoken.wav"
    code, _out, err = tts(runner, server, "Good morning, the train leaves at nine.", "-o", str(spoken))
    assert code == 0, err
    result = runner.invoke(
        app, ["transcribe", str(spoken), "--server", server.url, "--token", server.token, "--language", "en"]
    )
    assert result.exit_code == 0, result.stderr
    heard = result.stdout.lower()
    assert "morning" in heard
    assert "train" in heard
    assert "credits used" in result.stderr
    as_json = runner.invoke(
        app, ["transcribe", str(spoken), "--server", server.url, "--token", server.token, "--json", "--words"]
    )
    assert as_json.exit_code == 0, as_json.stderr
    assert '"segments"' in as_json.stdout
    refused = runner.invoke(
        app, ["transcribe", str(spoken), "--server", server.url, "--token", server.token, "--language", "zz"]
    )
    assert refused.exit_code == 1
    assert "language" in refused.stderr
