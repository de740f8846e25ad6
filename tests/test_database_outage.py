"""A PostgreSQL outage: requests answer 503 with Retry-After (never 500) and change nothing; the
embedded worker waits and resumes, so work submitted after the database is back is done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.conftest import Harness
from tests.postgres import Cluster, fresh_database, throwaway_cluster

JOBS = "/api/open/v1/speech/tts/jobs"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of this test's own (it is stopped and started again)."""
    with throwaway_cluster() as own:
        yield own


def waited(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The loggers that said they are waiting for the database."""
    return {record.name for record in caplog.records if "database unavailable" in record.getMessage()}


async def test_requests_answer_503_while_the_database_is_down_and_work_resumes_after(
    cluster: Cluster, harness_factory: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="openfish")
    harness = await harness_factory(database={"url": fresh_database(cluster.url)})
    caller = await harness.new_caller()
    client, headers = harness.client, caller.headers

    cluster.stop()
    try:
        refused = [
            await client.get("/api/open/v1/profile", headers=headers),
            await client.post(JOBS, headers=headers, json={"text": "Submitted while the database is down."}),
            await client.get(f"{JOBS}/job_{'0' * 32}", headers=headers),
        ]
        for _ in range(120):  # until the job and webhook loops have met the outage too
            if {"openfish.jobs", "openfish.webhooks"} <= waited(caplog):
                break
            await asyncio.sleep(0.1)
    finally:
        cluster.start()
    # The background loops (jobs, webhook deliveries, maintenance) wait it out: warnings, no errors.
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert {"openfish.jobs", "openfish.webhooks"} <= waited(caplog)
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert response.json()["code"] == "unavailable"

    text = "Submitted once the database is back."
    submitted = await client.post(JOBS, headers=headers, json={"text": text})
    assert submitted.status_code == 202, submitted.text
    for _ in range(400):
        job = (await client.get(f"{JOBS}/{submitted.json()['id']}", headers=headers)).json()
        if job["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "succeeded"
    # Only the job accepted after the outage was charged; the refused submit left nothing behind.
    assert (await client.get(JOBS, headers=headers)).json()["total"] == 1
    assert await harness.balance(caller.account_id) == 1000 - len(text)
