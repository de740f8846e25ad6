"""openfish as a real cluster: two API nodes and two workers, separate processes sharing one
PostgreSQL database and one S3 bucket (moto's server), started the way ``docs/scaling.md`` tells an
operator to. Every check goes through a node's HTTP API or reads the shared database and bucket.

This module is the deployment and what the tests read it with; ``conftest.py`` starts it once for
the package. Each test uses accounts of its own, so the tests hold in any order. PostgreSQL is a
server of the package's own, because the outage test stops it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from openfish.store.s3_blobs import S3BlobStore
from tests.postgres import Cluster as PostgresServer
from tests.processes import API, Processes, auth, balance_and_ledger_sum, query

T = TypeVar("T")

#: The address clients use (a load balancer in front of the API nodes): signed URLs are made under
#: it and every node recognises it as its own. The tests send each request to a node directly.
PUBLIC_URL = "http://speech.cluster.test"
API_NODES = ("api1", "api2")
WORKER_NODES = ("worker1", "worker2")
#: Short leases, so that the jobs of a killed worker run again within seconds.
LEASE_SECONDS = 4
#: Accounts made with the CLI when the deployment starts, one (or more) per test: tier, credits.
ACCOUNTS = {
    "jobs": ("enterprise", 100_000),
    "limits": ("free", 1_000),
    "stored": ("pro", 10_000),
    "voice": ("pro", 10_000),
    "lipsync": ("pro", 10_000),
    "outage": ("enterprise", 100_000),
}
#: An access-log line of an answer 5xx other than 503.
SERVER_ERROR_RE = re.compile(r"openfish\.access .* 5(?!03)\d\d [\d.]+ms$", re.MULTILINE)
VOICES = f"{API}/voices"
TTS = f"{API}/speech/tts"
LIPSYNC = f"{API}/media/lip-sync/jobs"


def cluster_settings(database_url: str, storage: dict[str, Any]) -> dict[str, str]:
    """The settings every process of the deployment shares (``OPENFISH_`` names without the prefix):
    the one place that says what the cluster runs on."""
    return {
        "DATABASE__URL": database_url,
        **{f"STORAGE__{key.upper()}": _setting(value) for key, value in storage.items()},
        "PUBLIC_URL": PUBLIC_URL,
        # Accounts are made with the CLI: no first account made by whichever API node starts first.
        "BOOTSTRAP__ENABLED": "false",
        "JOBS__LEASE_SECONDS": str(LEASE_SECONDS),
    }


def _setting(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# The processes of the deployment: API nodes (no background work at all) and workers, each with a
# data directory of its own, as on separate machines.


def spawn_api_node(procs: Processes, name: str, port: int) -> subprocess.Popen[bytes]:
    return procs.spawn(
        name,
        ["serve"],
        PORT=str(port),
        DATA_DIR=str(procs.data_dir / name),
        JOBS__EMBEDDED_WORKER="false",
    )


def spawn_worker_node(procs: Processes, name: str) -> subprocess.Popen[bytes]:
    return procs.spawn(name, ["worker"], DATA_DIR=str(procs.data_dir / name))


@dataclass
class Deployment:
    """The running cluster."""

    procs: Processes
    postgres: PostgresServer
    storage: dict[str, Any]
    bases: list[str]
    workers: list[subprocess.Popen[bytes]]
    #: ``ACCOUNTS``' names → (account id, token).
    accounts: dict[str, tuple[str, str]]

    @property
    def database(self) -> str:
        return self.procs.database

    @contextmanager
    def clients(self) -> Iterator[list[httpx.Client]]:
        """One client per API node, in ``API_NODES`` order; redirects to the bucket are followed."""
        with ExitStack() as stack:
            yield [
                stack.enter_context(httpx.Client(base_url=base, timeout=60, follow_redirects=True))
                for base in self.bases
            ]

    def blobs(self) -> S3BlobStore:
        """The bucket every node keeps its blobs in."""
        return S3BlobStore.from_url(**self.storage)

    def unfinished(self, account_id: str) -> int:
        """The account's jobs not yet ended."""
        rows = query(
            self.database,
            "SELECT count(*) FROM jobs WHERE account_id = :account AND status IN ('queued', 'processing')",
            account=account_id,
        )
        return int(rows[0][0])


def until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something other than None (or False); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


def behind_balancer(url: str) -> str:
    """``url``, made under the public URL, as the load balancer passes it on: path and query, to
    be sent to whichever node a client of :meth:`Deployment.clients` stands for."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, url
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def job_ledger(database: str, account_id: str) -> dict[str, Counter[str]]:
    """Per job of the account (ledger reference ``job:<id>``), how many rows of each kind it has."""
    rows = query(
        database,
        "SELECT reference, kind, count(*) FROM ledger_entries "
        "WHERE account_id = :account AND reference LIKE 'job:%' GROUP BY reference, kind",
        account=account_id,
    )
    kinds: dict[str, Counter[str]] = {}
    for reference, kind, count in rows:
        kinds.setdefault(str(reference), Counter())[str(kind)] = int(count)
    return kinds


def assert_balance(deployment: Deployment, clients: list[httpx.Client], account: str, expected: int) -> None:
    """The account's balance is ``expected``, its ledger sums to it, and every node says so."""
    account_id, token = deployment.accounts[account]
    assert balance_and_ledger_sum(deployment.database, account_id) == (expected, expected)
    for client in clients:
        profile = client.get(f"{API}/profile", headers=auth(token))
        assert profile.status_code == 200, profile.text
        assert profile.json()["credits"] == expected


def fetched_through(client: httpx.Client, url: str) -> httpx.Response:
    """GET a signed download from a node: it sends the client on to the bucket (a presigned URL)."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert [hop.status_code for hop in response.history] == [307], response.history
    return response
