"""Real ``openfish`` processes for end-to-end tests: started the way an operator starts them (``serve``,
``worker``, the CLI), stopped with SIGTERM or killed, their logs kept and shown when a test fails;
and what the tests read back from the database the processes share (jobs, the ledger, balances)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench.server import free_port
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

TOKEN_RE = re.compile(r"^(ofk_tok_\S+)$", re.MULTILINE)
ACCOUNT_RE = re.compile(r"\(account (user_\w+), token tok_\w+\)")
WORKER_RE = re.compile(r"openfish worker (\S+) running")
API = "/api/open/v1"
JOBS = f"{API}/speech/tts/jobs"
#: How long a process may take to start (load its models) on a busy two-core machine.
START_SECONDS = 120
#: Lines of each process's log shown when a test fails.
LOG_TAIL_LINES = 150


@dataclass
class Processes:
    """Every process a test started, so that ``finally`` can end all of them.

    ``settings`` (``OPENFISH_`` names without the prefix, e.g. ``DATABASE__URL``) go to every child;
    keyword arguments of :meth:`spawn` and the methods built on it add to them for one child."""

    data_dir: Path
    logs: Path
    port: int = field(default_factory=free_port)
    settings: dict[str, str] = field(default_factory=dict)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_files: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> str:
        """A URL :func:`query` reads the children's database with: the shared one, or the SQLite
        file in the data directory (read-only; WAL lets it be read beside the server)."""
        shared = self.settings.get("DATABASE__URL")
        return shared or f"sqlite:///file:{self.data_dir / 'openfish.db'}?mode=ro&uri=true&timeout=30"

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of a child: no inherited ``OPENFISH_*``, this test's data dir and port."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("OPENFISH_")}
        env.update(
            {
                "OPENFISH_DATA_DIR": str(self.data_dir),
                "OPENFISH_PORT": str(self.port),
                "OPENFISH_LOG_LEVEL": "info",
                "COLUMNS": "200",
            }
        )
        env.update({f"OPENFISH_{key.upper()}": value for key, value in {**self.settings, **settings}.items()})
        return env

    def spawn(self, name: str, args: list[str], **settings: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"{len(self.log_files):02d}-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed openfish commands)
                [sys.executable, "-m", "openfish", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(**settings),
            )
        self.started.append(process)
        self.log_files.append(log)
        self.commands.append(args)
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        return self.log_files[self.started.index(process)].read_text(errors="replace")

    def serve(self, **settings: str) -> subprocess.Popen[bytes]:
        """``openfish serve``, once ``/readyz`` answers 200."""
        server = self.spawn("serve", ["serve"], **settings)
        return self.ready(server, int(settings.get("PORT", self.port)))

    def ready(self, server: subprocess.Popen[bytes], port: int) -> subprocess.Popen[bytes]:
        """``server`` once ``/readyz`` on ``port`` answers 200."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert server.poll() is None, self.log_of(server)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not become ready:\n{self.log_of(server)}")

    def worker(self, **settings: str) -> subprocess.Popen[bytes]:
        """``openfish worker``, once it says it is running (its engines are loaded)."""
        return self.running(self.spawn("worker", ["worker"], **settings))

    def running(self, worker: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """``worker`` once it says it is running."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert worker.poll() is None, self.log_of(worker)
            if WORKER_RE.search(self.log_of(worker)):
                return worker
            time.sleep(0.1)
        raise AssertionError(f"worker did not start:\n{self.log_of(worker)}")

    def worker_name(self, worker: subprocess.Popen[bytes]) -> str:
        """The name a running worker claims jobs under (``jobs.lease_owner``)."""
        found = WORKER_RE.search(self.log_of(worker))
        assert found is not None, self.log_of(worker)
        return found.group(1)

    def cli(self, *args: str) -> str:
        """Run an ``openfish`` command to completion; its output."""
        process = self.spawn("cli", list(args))
        assert process.wait(timeout=START_SECONDS) == 0, self.log_of(process)
        return self.log_of(process)

    def new_account(self, name: str, tier: str, credits: int) -> tuple[str, str]:
        """An account made with ``openfish accounts create``: its id and its token."""
        output = self.cli("accounts", "create", "--name", name, "--tier", tier, "--credits", str(credits))
        token, account = TOKEN_RE.search(output), ACCOUNT_RE.search(output)
        assert token is not None, output
        assert account is not None, output
        return account.group(1), token.group(1)

    def terminate(self, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
        """SIGTERM and a clean exit within ``timeout`` (a hang is a failure, not a kill)."""
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"no exit {timeout}s after SIGTERM:\n{self.log_of(process)}") from None
        # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
        assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{self.log_of(process)}"
        if self.commands[self.started.index(process)][0] == "serve":
            assert "Application shutdown complete" in self.log_of(process), self.log_of(process)

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def assert_no_tracebacks(self) -> None:
        for log in self.log_files:
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log.name}:\n{text}"

    def show_logs(self) -> None:
        """Print the end of every process's log (pytest shows it with the failure)."""
        for log in self.log_files:
            lines = log.read_text(errors="replace").splitlines()
            print(f"----- {log} (last {LOG_TAIL_LINES} of {len(lines)} lines) -----")
            print("\n".join(lines[-LOG_TAIL_LINES:]))

    @contextmanager
    def showing_logs(self) -> Iterator[None]:
        """Show the processes' logs if the block fails."""
        try:
            yield
        except BaseException:
            self.show_logs()
            raise


@contextmanager
def processes(tmp_path: Path, **settings: str) -> Iterator[Processes]:
    """A :class:`Processes` whose children are all killed after the block (their logs shown if it
    failed)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(data_dir=tmp_path / "data", logs=logs, settings=settings)
    try:
        with procs.showing_logs():
            yield procs
    finally:
        procs.kill_all()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query(database: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """Rows from a database (a SQLAlchemy URL, e.g. :attr:`Processes.database`); ``:name`` parameters."""
    engine = create_engine(database, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def kinds_for(database: str, reference: str) -> dict[str, int]:
    """How many ledger rows of each kind carry ``reference``."""
    rows = query(
        database,
        "SELECT kind, count(*) FROM ledger_entries WHERE reference = :reference GROUP BY kind",
        reference=reference,
    )
    return {str(kind): int(count) for kind, count in rows}


def balance_and_ledger_sum(database: str, account_id: str) -> tuple[int, int]:
    balance = query(database, "SELECT credits FROM accounts WHERE id = :id", id=account_id)[0][0]
    total = query(
        database, "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = :id", id=account_id
    )
    return int(balance), int(total[0][0])
