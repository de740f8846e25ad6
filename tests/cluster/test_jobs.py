"""Jobs accepted by both API nodes, run by two workers, one of them killed on the way."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

import pytest

from openfish.audio.decode import decode_audio
from tests.cluster.deployment import (
    ACCOUNTS,
    Deployment,
    assert_balance,
    behind_balancer,
    fetched_through,
    job_ledger,
    spawn_worker_node,
    until,
)
from tests.processes import JOBS, auth, query

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------
# 1. Jobs from both API nodes, run by two workers, one of them killed on the way
# ------------------------------------------------------------------------------------------------

JOB_COUNT = 100
FORMATS = ("mp3", "wav", "opus")


def job_text(index: int) -> str:
    return f"Cluster job number {index}."


def test_jobs_submitted_to_both_nodes_succeed_exactly_once_when_a_worker_is_killed(
    deployment: Deployment,
) -> None:
    procs, database = deployment.procs, deployment.database
    account_id, token = deployment.accounts["jobs"]
    starting = ACCOUNTS["jobs"][1]
    with procs.showing_logs(), deployment.clients() as clients:
        submitted: dict[str, int] = {}  # job id → index

        def submit(indexes: range) -> None:
            for index in indexes:
                body = {"text": job_text(index), "format": FORMATS[index % len(FORMATS)]}
                answer = clients[index % len(clients)].post(JOBS, headers=auth(token), json=body)
                assert answer.status_code == 202, answer.text
                job = answer.json()
                assert (job["status"], job["attempt"], job["creditsUsed"]) == ("queued", 0, 0), job
                submitted[job["id"]] = index

        submit(range(JOB_COUNT // 2))

        # Kill a worker while it holds jobs: frozen (SIGSTOP) until it is seen holding one.
        victim = deployment.workers[0]
        victim_name = procs.worker_name(victim)

        def held_by_victim() -> list[str]:
            rows = query(
                database,
                "SELECT id FROM jobs WHERE status = 'processing' AND lease_owner = :owner",
                owner=victim_name,
            )
            return [str(job_id) for (job_id,) in rows]

        def killed_holding_jobs() -> list[str] | None:
            victim.send_signal(signal.SIGSTOP)
            if not held_by_victim():
                victim.send_signal(signal.SIGCONT)
                return None
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(timeout=10) == -signal.SIGKILL
            return held_by_victim()  # what it held when it died (a commit it had sent went through)

        orphans = until(killed_holding_jobs, 60, "the worker to hold a job", interval=0.02)
        assert orphans, "every job the worker held was saved just before it died: kill it earlier"
        assert set(orphans) <= set(submitted)
        # A new worker joins; the rest of the jobs arrive meanwhile.
        deployment.workers[0] = spawn_worker_node(procs, "worker3")
        submit(range(JOB_COUNT // 2, JOB_COUNT))
        procs.running(deployment.workers[0])

        until(lambda: deployment.unfinished(account_id) == 0, 300, "every job to end", interval=0.5)

        # In the database: every job succeeded once, held once and captured once.
        jobs: dict[str, tuple[Any, ...]] = {
            str(row[0]): row[1:]
            for row in query(
                database,
                "SELECT id, status, attempt, credits FROM jobs WHERE account_id = :account",
                account=account_id,
            )
        }
        assert set(jobs) == set(submitted)
        for job_id, (status, attempt, credits) in jobs.items():
            assert status == "succeeded", (job_id, status)
            assert 1 <= attempt <= 3, (job_id, attempt)
            assert credits == len(job_text(submitted[job_id]))
        for job_id in orphans:
            assert jobs[job_id][1] >= 2, (job_id, jobs[job_id])  # the killed attempt was not the last
        ledger = job_ledger(database, account_id)
        assert ledger == {f"job:{job_id}": Counter(hold=1, capture=1) for job_id in submitted}
        holds = query(database, "SELECT status FROM credit_holds WHERE account_id = :a", a=account_id)
        assert Counter(status for (status,) in holds) == {"captured": JOB_COUNT}
        spent = sum(len(job_text(index)) for index in submitted.values())
        assert_balance(deployment, clients, "jobs", starting - spent)

        # Over HTTP, from the node each job was not submitted to: succeeded, with audio that decodes.
        for job_id, index in submitted.items():
            client = clients[(index + 1) % len(clients)]
            job = client.get(f"{JOBS}/{job_id}", headers=auth(token)).json()
            assert job["status"] == "succeeded", job
            assert job["creditsUsed"] == job["characters"] == len(job_text(index)), job
            assert job["format"] == FORMATS[index % len(FORMATS)]
            audio = decode_audio(fetched_through(client, behind_balancer(job["audioUrl"])).content)
            assert 0.8 < audio.duration_seconds < 5, (job_id, audio.duration_seconds)
        pages = [client.get(JOBS, headers=auth(token), params={"limit": 100}).json() for client in clients]
        assert pages[0]["total"] == pages[1]["total"] == JOB_COUNT
        assert [(j["id"], j["status"]) for j in pages[0]["items"]] == [
            (j["id"], j["status"]) for j in pages[1]["items"]
        ]

    # In the bucket: one audio object per job (a rerun overwrote, never added), none on any node's disk.
    names = Counter(
        PurePosixPath(blob.key).stem.rsplit("_", 1)[0] for blob in deployment.blobs().list("jobs")
    )
    assert {job_id: names[job_id] for job_id in submitted} == dict.fromkeys(submitted, 1)
    assert list(procs.data_dir.rglob("blobs")) == []
