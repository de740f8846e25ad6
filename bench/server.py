"""A real ``openfish serve`` for benchmarks: free port, limits out of the way, output in a log file
(never an unread pipe, which would stall the server once it fills)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``openfish serve`` with a big balance and limits high enough for any benchmark, once ready;
    returns the process and the first account's token."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("OPENFISH_")},
        "OPENFISH_DATA_DIR": str(data_dir),
        "OPENFISH_PORT": str(port),
        "OPENFISH_LOG_LEVEL": "warning",
        "OPENFISH_BOOTSTRAP__CREDITS": str(10**9),
        "OPENFISH_TIERS__PRO__REQUESTS_PER_MINUTE": "1000000",
        "OPENFISH_TIERS__PRO__MAX_CONCURRENT_REQUESTS": "64",
        "OPENFISH_TIERS__PRO__MAX_REALTIME_SESSIONS": "64",
        "COLUMNS": "200",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "openfish", "serve"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    for _ in range(600):
        if server.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                token = re.search(r"^ofk_tok_\S+$", log.read_text(), re.MULTILINE)
                if token is None:
                    break
                return server, token.group(0)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    server.wait()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")
