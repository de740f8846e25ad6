"""The database goes away for a while: 503s, then everything resumes, nothing lost or charged twice."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest

from tests.cluster.deployment import ACCOUNTS, Deployment, assert_balance, job_ledger, until
from tests.processes import API, JOBS, auth, query

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------
# 6. The database goes away for a while
# ------------------------------------------------------------------------------------------------

OUTAGE_SECONDS = 10
OUTAGE_JOBS = 8
#: What a worker's loops (jobs, webhook deliveries) log when they find the database gone.
BACKOFF_RE = re.compile(
    r"(job worker|webhook delivery): database unavailable \(.*?\); retrying in ([\d.]+) s", re.DOTALL
)


def serves(client: httpx.Client, headers: dict[str, str]) -> bool:
    return client.get(f"{API}/profile", headers=headers).status_code == 200


def outage_text(index: int) -> str:
    """Long enough (about ten seconds of speech) that the workers are busy when the database stops."""
    again = "It is spoken after it came back, once the workers have found the database again."
    return f"Job {index} was submitted before the database went away. {again} {again}"


def test_a_database_outage_answers_503_and_work_resumes_after_it(deployment: Deployment) -> None:
    procs, database, postgres = deployment.procs, deployment.database, deployment.postgres
    account_id, token = deployment.accounts["outage"]
    headers = auth(token)
    with procs.showing_logs(), deployment.clients() as clients:
        before: dict[str, int] = {}
        for index in range(OUTAGE_JOBS):
            answer = clients[index % 2].post(JOBS, headers=headers, json={"text": outage_text(index)})
            assert answer.status_code == 202, answer.text
            before[answer.json()["id"]] = index
        logs_before = {worker: len(procs.log_of(worker)) for worker in deployment.workers}

        postgres.stop()
        try:
            stopped = time.monotonic()
            refused: list[httpx.Response] = []
            not_ready: list[httpx.Response] = []
            while time.monotonic() - stopped < OUTAGE_SECONDS:
                for client in clients:
                    refused += [
                        client.get(f"{API}/profile", headers=headers),
                        client.post(JOBS, headers=headers, json={"text": "Submitted while it is down."}),
                        client.get(f"{JOBS}/{next(iter(before))}", headers=headers),
                    ]
                    not_ready.append(client.get("/readyz"))
                    assert client.get("/healthz").status_code == 200
                time.sleep(0.5)
        finally:
            postgres.start()
        restarted = datetime.now(UTC)

        assert refused
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
            assert response.json()["code"] == "unavailable"
        assert {response.status_code for response in not_ready} == {503}

        # Every node serves again, and the workers pick up where they left off.
        for client in clients:
            until(partial(serves, client, headers), 30, "the node to serve again")
        after = clients[1].post(JOBS, headers=headers, json={"text": "Submitted once it is back."})
        assert after.status_code == 202, after.text
        until(lambda: deployment.unfinished(account_id) == 0, 120, "the jobs to end", interval=0.25)

        jobs = query(
            database,
            "SELECT id, status, finished_at FROM jobs WHERE account_id = :account",
            account=account_id,
        )
        assert {str(job_id) for job_id, _, _ in jobs} == {*before, after.json()["id"]}  # no refused one
        assert {status for _, status, _ in jobs} == {"succeeded"}
        # Some of the work submitted before the outage was only finished after it.
        assert any(str(job_id) in before and finished >= restarted for job_id, _, finished in jobs)
        ledger = job_ledger(database, account_id)
        assert ledger == {f"job:{job_id}": Counter(hold=1, capture=1) for job_id, _, _ in jobs}
        spent = sum(len(outage_text(index)) for index in before.values()) + len("Submitted once it is back.")
        assert_balance(deployment, clients, "outage", ACCOUNTS["outage"][1] - spent)

    # Each worker's loops met the outage and waited longer each time they looked (up to 10 s).
    for worker in deployment.workers:
        found = BACKOFF_RE.findall(procs.log_of(worker)[logs_before[worker] :])
        for loop in ("job worker", "webhook delivery"):
            waits = [float(wait) for name, wait in found if name == loop]
            assert waits == sorted(waits), (loop, waits)
            assert 2 <= waits[-1] <= 10, (loop, waits)
