"""A PostgreSQL outage: requests answer 503 with Retry-After (never 500) and change nothing; the
embedded worker waits and resumes, so work submitted after the database is back is done."""

from __future__ import annotations

import asyncio
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


async def test_requests_answer_503_while_the_database_is_down_and_work_resumes_after(
    cluster: Cluster, harness_factory: Callable[..., Awaitable[Harness]]
) -> None:
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
        await asyncio.sleep(1.5)  # the worker's loop meets the outage too, and backs off
    finally:
        cluster.start()
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
