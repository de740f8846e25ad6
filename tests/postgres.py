"""A PostgreSQL server for tests: ``OPENFISH_TEST_POSTGRES_URL`` when set, otherwise a throwaway
cluster started here — ``initdb`` in a temporary directory, listening on a free loopback port only,
run as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root) — and
removed afterwards. Each test gets a database of its own (:func:`fresh_database`)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

#: Set to use an existing server (a URL whose user may create databases) instead of a throwaway one.
URL_VARIABLE = "OPENFISH_TEST_POSTGRES_URL"


def _binary(name: str) -> str:
    """``initdb``/``pg_ctl`` from PATH or Debian's versioned directory (not on PATH there)."""
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = shutil.which(name) or (debian[-1] if debian else None)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install Debian's postgresql package "
            f"(scripts/bootstrap.sh does) or set {URL_VARIABLE}"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(tool: str, *arguments: str) -> None:
    """Run a PostgreSQL tool, as the ``postgres`` user when we are root (the server refuses root)."""
    command = [_binary(tool), *arguments]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)  # noqa: S603 (fixed PostgreSQL tools)


class Cluster:
    """A throwaway cluster in a temporary directory, on a free loopback port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="openfish-pg-"))
        self._data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sockets, "postgres")
        port = _free_port()
        # fsync off: a test cluster is thrown away, and durability costs seconds per test here.
        self._options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        )
        self.url = f"postgresql+psycopg://openfish@127.0.0.1:{port}/postgres"
        _run("initdb", "-D", str(self._data), "-U", "openfish", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        _run(
            "pg_ctl", "-D", str(self._data), "-o", self._options, "-w", "-l", str(self.root / "log"), "start"
        )

    def stop(self) -> None:
        """Stop the server at once (clients see their connections drop)."""
        if (self._data / "postmaster.pid").exists():
            _run("pg_ctl", "-D", str(self._data), "-m", "immediate", "stop")

    def remove(self) -> None:
        """Stop the server and delete everything it wrote."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A cluster of one's own (for tests that stop and start it), removed after the block."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The base URL (``postgresql+psycopg://…/postgres``) of a server that lives for the block."""
    configured = os.environ.get(URL_VARIABLE)
    if configured:
        yield configured
        return
    with throwaway_cluster() as cluster:
        yield cluster.url


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server; its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = make_url(server_url)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)
