"""Async TTS jobs across real processes: ``openfish serve`` and ``openfish worker`` on one SQLite file.

No mocks: the processes are started the way an operator starts them, stopped with SIGTERM or killed
with SIGKILL, and the outcome is checked both over HTTP and in the database file itself — every job
ends ``succeeded`` exactly once, its credits are held once and captured once, and each account's
ledger still sums to its balance.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from openfish.audio.decode import decode_audio
from tests.processes import (
    ACCOUNT_RE,
    API,
    JOBS,
    TOKEN_RE,
    Processes,
    auth,
    balance_and_ledger_sum,
    kinds_for,
    processes,
    query,
)

pytestmark = pytest.mark.slow

BOOTSTRAP_CREDITS = 100_000


def bootstrap_token(procs: Processes, server: subprocess.Popen[bytes]) -> str:
    found = TOKEN_RE.search(procs.log_of(server))
    assert found is not None, procs.log_of(server)
    return found.group(1)


def account_of(database: str, job_id: str) -> str:
    return str(query(database, "SELECT account_id FROM jobs WHERE id = :id", id=job_id)[0][0])


def wait_for_job(
    client: httpx.Client, token: str, job_id: str, done: Any, timeout: float, interval: float = 0.2
) -> dict[str, Any]:
    """Poll the job until ``done(job)``; the last state seen if the deadline passes first."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{JOBS}/{job_id}", headers=auth(token))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(interval)


def fetch_audio_seconds(client: httpx.Client, url: str) -> float:
    """Fetch a job's signed audio URL (no token) and decode it; its length in seconds."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    return decode_audio(response.content).duration_seconds


def job_blobs(data_dir: Path, job_id: str) -> list[str]:
    folder = data_dir / "blobs" / "jobs"
    return sorted(path.name for path in folder.iterdir() if job_id in path.name) if folder.exists() else []


LONG_SENTENCES = [
    "The lighthouse keeper climbed the spiral stairs every evening before the sun went down.",
    "Ships far out at sea watched for the beam that swept across the dark and restless water.",
    "On stormy nights the wind howled around the tower and rattled the heavy glass panes.",
    "He kept a careful log of every vessel that passed, its name, its flag and its heading.",
]


def long_text(characters: int) -> str:
    words: list[str] = []
    index = 0
    while len(" ".join(words)) < characters:
        words.append(LONG_SENTENCES[index % len(LONG_SENTENCES)])
        index += 1
    return " ".join(words)[:characters].rstrip() + "."


# ------------------------------------------------------------------------------------------------
# a. Restart safety
# ------------------------------------------------------------------------------------------------

RESTART_TEXTS = {
    "mp3": "Queued before the restart, spoken after it.",
    "wav": "A second job waits in the queue while the server is down.",
    "opus": "The third one, in Opus, with a comma, and a full stop.",
}


def test_jobs_queued_before_a_restart_complete_after_it_and_are_charged_once(tmp_path: Path) -> None:
    with processes(tmp_path) as procs:
        # 1. A server that takes jobs but runs none: everything submitted stays queued.
        server = procs.serve(JOBS__EMBEDDED_WORKER="false")
        token = bootstrap_token(procs, server)
        submitted: dict[str, str] = {}  # job id → text
        with httpx.Client(base_url=procs.base, timeout=30) as client:
            for fmt, text in RESTART_TEXTS.items():
                headers = auth(token) | ({"Idempotency-Key": "restart-key-1"} if fmt == "mp3" else {})
                answer = client.post(JOBS, headers=headers, json={"text": text, "format": fmt})
                assert answer.status_code == 202, answer.text
                job = answer.json()
                assert (job["status"], job["attempt"], job["creditsUsed"]) == ("queued", 0, 0)
                submitted[job["id"]] = text
            first_key_job = next(iter(submitted))
            time.sleep(1.5)  # time enough for any (wrongly running) worker to claim something
            for job_id in submitted:
                state = client.get(f"{JOBS}/{job_id}", headers=auth(token)).json()
                assert (state["status"], state["attempt"]) == ("queued", 0), state
            profile = client.get(f"{API}/profile", headers=auth(token)).json()
            held = sum(len(text) for text in submitted.values())
            assert profile["credits"] == BOOTSTRAP_CREDITS - held  # held, not yet captured
        procs.terminate(server)

        account = account_of(procs.database, first_key_job)
        rows = query(procs.database, "SELECT status, attempt FROM jobs ORDER BY created_at")
        assert rows == [("queued", 0)] * len(RESTART_TEXTS)
        holds = query(procs.database, "SELECT status FROM credit_holds")
        assert sorted(holds) == [("held",)] * len(RESTART_TEXTS)

        # 2. The same data directory, now with the embedded worker: every queued job runs.
        server = procs.serve(JOBS__EMBEDDED_WORKER="true")
        assert TOKEN_RE.search(procs.log_of(server)) is None  # no second bootstrap
        with httpx.Client(base_url=procs.base, timeout=30) as client:
            for job_id, text in submitted.items():
                job = wait_for_job(client, token, job_id, lambda j: j["status"] != "queued", timeout=60)
                job = wait_for_job(client, token, job_id, lambda j: j["status"] == "succeeded", timeout=60)
                assert job["status"] == "succeeded", job
                assert job["attempt"] == 1, job
                assert job["creditsUsed"] == job["characters"] == len(text), job
                assert job["startedAt"] is not None
                assert job["finishedAt"] is not None
                assert fetch_audio_seconds(client, job["audioUrl"]) > 1.0
            # The idempotency key survives the restart: a retry replays the first answer, no new job.
            replay = client.post(
                JOBS,
                headers=auth(token) | {"Idempotency-Key": "restart-key-1"},
                json={"text": RESTART_TEXTS["mp3"], "format": "mp3"},
            )
            assert replay.status_code == 202, replay.text
            assert replay.headers.get("Idempotent-Replayed") == "true"
            assert replay.json()["id"] == first_key_job
            profile = client.get(f"{API}/profile", headers=auth(token)).json()
            assert profile["credits"] == BOOTSTRAP_CREDITS - held
        procs.terminate(server)
        procs.assert_no_tracebacks()

    assert query(procs.database, "SELECT count(*) FROM jobs") == [(len(RESTART_TEXTS),)]
    for job_id in submitted:
        assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1, "capture": 1}
        assert len(job_blobs(procs.data_dir, job_id)) == 1
    balance, ledger = balance_and_ledger_sum(procs.database, account)
    assert balance == ledger == BOOTSTRAP_CREDITS - held


def test_a_job_running_when_the_server_stops_runs_again_after_the_restart(tmp_path: Path) -> None:
    text = long_text(1500)
    lease = {"JOBS__LEASE_SECONDS": "3"}
    with processes(tmp_path) as procs:
        server = procs.serve(**lease)
        token = bootstrap_token(procs, server)
        with httpx.Client(base_url=procs.base, timeout=30) as client:
            answer = client.post(JOBS, headers=auth(token), json={"text": text, "format": "wav"})
            assert answer.status_code == 202, answer.text
            job_id: str = answer.json()["id"]
            job = wait_for_job(
                client, token, job_id, lambda j: j["status"] != "queued", timeout=30, interval=0.05
            )
            assert (job["status"], job["attempt"]) == ("processing", 1), job
        procs.terminate(server)  # graceful: the attempt is handed back to the queue, nothing settled
        assert query(procs.database, "SELECT status, attempt FROM jobs") == [("queued", 0)]
        assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1}

        server = procs.serve(**lease)
        with httpx.Client(base_url=procs.base, timeout=30) as client:
            job = wait_for_job(
                client, token, job_id, lambda j: j["status"] not in ("queued", "processing"), timeout=120
            )
            assert (job["status"], job["attempt"]) == ("succeeded", 1), job  # the stop cost no attempt
            assert job["creditsUsed"] == len(text)
            assert fetch_audio_seconds(client, job["audioUrl"]) > 30
        procs.terminate(server)
        procs.assert_no_tracebacks()

    assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1, "capture": 1}
    balance, ledger = balance_and_ledger_sum(procs.database, account_of(procs.database, job_id))
    assert balance == ledger == BOOTSTRAP_CREDITS - len(text)
    assert len(job_blobs(procs.data_dir, job_id)) == 1


# ------------------------------------------------------------------------------------------------
# b. A worker killed in the middle of a job
# ------------------------------------------------------------------------------------------------


def test_a_job_whose_worker_is_killed_runs_again_on_another_worker_exactly_once(tmp_path: Path) -> None:
    text = long_text(6000)
    lease = {"JOBS__LEASE_SECONDS": "3", "JOBS__EMBEDDED_WORKER": "false"}
    with processes(tmp_path) as procs:
        server = procs.serve(**lease)
        token = bootstrap_token(procs, server)
        first = procs.worker(**lease)
        with httpx.Client(base_url=procs.base, timeout=30) as client:
            answer = client.post(JOBS, headers=auth(token), json={"text": text, "format": "mp3"})
            assert answer.status_code == 202, answer.text
            job_id: str = answer.json()["id"]

            job = wait_for_job(
                client, token, job_id, lambda j: j["status"] != "queued", timeout=30, interval=0.05
            )
            assert (job["status"], job["attempt"]) == ("processing", 1), job
            time.sleep(1.0)  # well inside the synthesis (it takes many seconds), past a heartbeat
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL

            # Nobody finishes the job for the dead worker, and nothing is settled for it.
            job = client.get(f"{JOBS}/{job_id}", headers=auth(token)).json()
            assert (job["status"], job["attempt"]) == ("processing", 1), job
            assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1}
            [(dead_lease,)] = query(
                procs.database, "SELECT lease_expires_at FROM jobs WHERE id = :id", id=job_id
            )

            second = procs.worker(**lease)
            job = wait_for_job(client, token, job_id, lambda j: j["attempt"] >= 2, timeout=30, interval=0.1)
            assert (job["status"], job["attempt"]) == ("processing", 2), job
            # Claimed again only once the dead worker's last lease had run out.
            assert datetime.fromisoformat(job["startedAt"]) >= datetime.fromisoformat(dead_lease + "+00:00")
            job = wait_for_job(
                client, token, job_id, lambda j: j["status"] != "processing", timeout=240, interval=0.5
            )
            assert job["status"] == "succeeded", (job, procs.log_of(second))
            assert job["attempt"] == 2, job
            assert job["creditsUsed"] == job["characters"] == len(text), job
            assert fetch_audio_seconds(client, job["audioUrl"]) > 120  # 6000 characters of speech
            profile = client.get(f"{API}/profile", headers=auth(token)).json()
            assert profile["credits"] == BOOTSTRAP_CREDITS - len(text)
            # It stays done: no third attempt once the second worker has been idle for a while.
            time.sleep(4)
            again = client.get(f"{JOBS}/{job_id}", headers=auth(token)).json()
            assert (again["status"], again["attempt"], again["finishedAt"]) == (
                "succeeded",
                2,
                job["finishedAt"],
            )
        procs.terminate(second)
        procs.terminate(server)
        second_log = procs.log_of(second)
        assert "lease lost" not in second_log, second_log
        assert "result dropped" not in second_log, second_log
        procs.assert_no_tracebacks()

    reference = f"job:{job_id}"
    assert kinds_for(procs.database, reference) == {"hold": 1, "capture": 1}
    capture = query(procs.database, "SELECT amount, credits_used FROM ledger_entries WHERE kind = 'capture'")
    assert capture == [(0, len(text))]
    assert query(procs.database, "SELECT status FROM credit_holds WHERE reference = :ref", ref=reference) == [
        ("captured",)
    ]
    account = account_of(procs.database, job_id)
    balance, ledger = balance_and_ledger_sum(procs.database, account)
    assert balance == ledger == BOOTSTRAP_CREDITS - len(text)
    blobs = job_blobs(procs.data_dir, job_id)
    assert len(blobs) == 1, blobs
    assert blobs[0].endswith(".mp3"), blobs
    assert not [p.name for p in (procs.data_dir / "blobs" / "jobs").iterdir() if p.name.startswith(".tmp")]


# ------------------------------------------------------------------------------------------------
# c. A burst of submissions from several accounts against low tier limits
# ------------------------------------------------------------------------------------------------

BURST = 200
ACCOUNTS = 4
CONCURRENCY = 40
RPM = 40
IN_FLIGHT = 4


@dataclass(frozen=True)
class Submission:
    account: int
    text: str
    status: int
    body: dict[str, Any]
    retry_after: str | None


async def fire_burst(base: str, tokens: list[str]) -> list[Submission]:
    """``BURST`` submissions, round-robin over the accounts, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def submit(client: httpx.AsyncClient, index: int) -> Submission:
        account = index % len(tokens)
        text = f"Burst job {index} for account {account}." + " More words." * (index % 5)
        async with gate:
            response = await client.post(JOBS, headers=auth(tokens[account]), json={"text": text})
        return Submission(
            account, text, response.status_code, response.json(), response.headers.get("Retry-After")
        )

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        return list(await asyncio.gather(*(submit(client, index) for index in range(BURST))))


def test_a_burst_from_several_accounts_is_admitted_or_refused_and_every_admitted_job_is_charged_once(
    tmp_path: Path,
) -> None:
    limits = {
        "TIERS__PRO__REQUESTS_PER_MINUTE": str(RPM),
        "TIERS__PRO__MAX_CONCURRENT_REQUESTS": str(IN_FLIGHT),
    }
    with processes(tmp_path) as procs:
        server = procs.serve(**limits)
        # A separate worker process competes with the embedded one for every job.
        extra_worker = procs.spawn("worker", ["worker"], **limits)
        tokens = [bootstrap_token(procs, server)]
        account_ids = ACCOUNT_RE.findall(procs.log_of(server))
        starting = [BOOTSTRAP_CREDITS]
        for index in range(1, ACCOUNTS):
            credits = 20_000 + index * 1_111
            account_id, token = procs.new_account(f"burst{index}", "pro", credits)
            tokens.append(token)
            account_ids.append(account_id)
            starting.append(credits)
        assert len(account_ids) == len(set(account_ids)) == ACCOUNTS, account_ids
        procs.running(extra_worker)

        started = time.monotonic()
        results = asyncio.run(fire_burst(procs.base, tokens))
        burst_seconds = time.monotonic() - started

        assert {result.status for result in results} <= {202, 429}, [
            (r.status, r.body) for r in results if r.status not in (202, 429)
        ]
        accepted = [result for result in results if result.status == 202]
        refused = [result for result in results if result.status == 429]
        assert accepted, len(refused)
        assert refused, len(accepted)
        for result in refused:
            assert result.retry_after is not None, result
            assert int(result.retry_after) >= 1, result
        for result in accepted:
            assert (result.body["status"], result.body["attempt"]) == ("queued", 0), result
        by_account = [[r for r in accepted if r.account == a] for a in range(ACCOUNTS)]
        for account_accepted in by_account:
            assert 0 < len(account_accepted) <= RPM  # the minute's window caps each account
        job_ids = {result.body["id"] for result in accepted}
        assert len(job_ids) == len(accepted)

        # Every admitted job (and nothing else) reaches succeeded; polled in the database file,
        # because the API would answer these accounts 429 for the rest of the minute.
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            pending = query(
                procs.database, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'processing')"
            )
            if pending == [(0,)]:
                break
            time.sleep(0.5)
        drained_seconds = time.monotonic() - started
        jobs = query(procs.database, "SELECT id, account_id, status, attempt, credits FROM jobs")
        assert {row[0] for row in jobs} == job_ids  # no job lost, none made by a refused request
        assert {(row[2], row[3]) for row in jobs} == {("succeeded", 1)}, [
            r for r in jobs if r[2:4] != ("succeeded", 1)
        ]
        procs.terminate(extra_worker)
        procs.terminate(server)
        procs.assert_no_tracebacks()

    texts = {result.body["id"]: result.text for result in accepted}
    for job_id, account_id, _status, _attempt, credits in jobs:
        assert credits == len(texts[job_id])
        assert account_id == account_ids[next(r.account for r in accepted if r.body["id"] == job_id)]
    doubled = query(
        procs.database,
        "SELECT reference, kind, count(*) FROM ledger_entries GROUP BY reference, kind HAVING count(*) > 1",
    )
    assert doubled == []
    for job_id in job_ids:
        assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1, "capture": 1}
        assert len(job_blobs(procs.data_dir, job_id)) == 1
    for index, account_id in enumerate(account_ids):
        spent = sum(len(result.text) for result in by_account[index])
        balance, ledger = balance_and_ledger_sum(procs.database, account_id)
        assert balance == ledger == starting[index] - spent, (index, balance, ledger, starting[index], spent)
    print(
        f"burst: {len(accepted)} accepted, {len(refused)} refused in {burst_seconds:.1f}s; "
        f"all done after {drained_seconds:.1f}s"
    )
