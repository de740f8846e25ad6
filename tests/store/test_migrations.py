"""Upgrades keep work: voices an older version left ``processing`` are analysed after the upgrade;
voice usage (0010) comes and goes with its revision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from alembic import command
from sqlalchemy import Connection, inspect, select, text

from openfish.store.database import alembic_config
from openfish.store.models import Job, LedgerEntry, Voice
from tests.api.test_voices import accepted_voice
from tests.conftest import Harness


def migrate_to(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return run


def has_usage_table(connection: Connection) -> bool:
    return inspect(connection).has_table("voice_usage")


async def voice_jobs(harness: Harness) -> list[Job]:
    async with harness.services.db.session() as session:
        return list(await session.scalars(select(Job).where(Job.kind == "voice")))


async def test_voices_left_processing_by_version_0005_are_analysed_after_the_upgrade(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory(jobs={"embedded_worker": False})
    services = harness.services
    caller = await harness.new_caller()
    voice = await accepted_voice(harness, caller)
    # Back to 0005: the state an older version leaves (a processing voice, its price held, no job).
    async with services.db.engine.begin() as connection:
        await connection.run_sync(migrate_to("0005", down=True))
    async with services.db.session() as session:  # the 0005 table: no column of later revisions
        assert await session.scalar(text("SELECT count(*) FROM jobs WHERE kind = 'voice'")) == 0
    async with services.db.engine.begin() as connection:
        await connection.run_sync(migrate_to("head"))
    [job] = await voice_jobs(harness)
    assert (job.status, job.payload, job.credits) == ("queued", {"voice_id": voice.id}, 100)

    stop = asyncio.Event()
    worker = asyncio.create_task(services.job_worker.run(stop))
    try:
        for _ in range(600):
            async with services.db.session() as session:
                status = (await session.get(Voice, voice.id, populate_existing=True)).status  # type: ignore[union-attr]
            if status != "processing":
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert status == "ready"
    async with services.db.session() as session:
        kinds = list(
            await session.scalars(
                select(LedgerEntry.kind)
                .where(LedgerEntry.reference == f"voice:{voice.id}")
                .order_by(LedgerEntry.id)
            )
        )
    assert kinds == ["hold", "capture"]  # the old hold, captured once: nothing held twice
    assert await harness.balance(caller.account_id) == 1000 - 100


async def test_voice_usage_comes_with_0010_and_goes_with_its_downgrade(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory(jobs={"embedded_worker": False})
    services = harness.services
    caller = await harness.new_caller()
    voice = await accepted_voice(harness, caller)
    await services.voices.count_task(caller.account_id, "en_US-joe-medium")
    assert (await services.voices.get(caller.account_id, "en_US-joe-medium")).usage.tasks == 1
    async with services.db.engine.begin() as connection:
        await connection.run_sync(migrate_to("0009", down=True))
        assert not await connection.run_sync(has_usage_table)
    async with services.db.engine.begin() as connection:
        await connection.run_sync(migrate_to("head"))
        assert await connection.run_sync(has_usage_table)
    # Back empty (nothing was counted before 0010); made and built-in voices count from here on.
    assert (await services.voices.get(caller.account_id, "en_US-joe-medium")).usage.tasks == 0
    for voice_id in (voice.id, voice.id, "en_US-joe-medium"):
        await services.voices.count_task(caller.account_id, voice_id)
    assert (await services.voices.get(caller.account_id, voice.id)).usage.tasks == 2
    assert (await services.voices.get(caller.account_id, "en_US-joe-medium")).usage.tasks == 1
