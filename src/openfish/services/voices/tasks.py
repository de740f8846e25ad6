"""Voice usage: every charged synthesis request that named a voice is one *task* of that voice
(the Fish Audio API's ``task_count``), counted per account in ``voice_usage``.

Counted where synthesis is charged (``services/tts``): a streamed request once its last audio is
made, a stored (``cache=true``) one once stored or reused, a TTS job in the transaction that ends
it, a realtime stream when it finishes having spoken. A request that named no voice (the default
voice of its language) counts for none; so do inline references, which are no voice
(``VoiceService.count_task`` counts only voices that exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Subquery, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.store.models import VoiceUsage, utcnow


@dataclass(frozen=True)
class Usage:
    """A voice's use by every account: ``tasks`` (charged requests), ``accounts`` (how many
    different accounts made them)."""

    tasks: int = 0
    accounts: int = 0


async def count_task(session: AsyncSession, account_id: str, voice_id: str) -> None:
    """One more task of ``voice_id`` by ``account_id``, in the session's transaction (an upsert, so
    concurrent first uses do not collide)."""
    now = utcnow()
    insert = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    statement = (
        insert(VoiceUsage)
        .values(voice_id=voice_id, account_id=account_id, task_count=1, last_used_at=now)
        .on_conflict_do_update(
            index_elements=["voice_id", "account_id"],
            set_={"task_count": VoiceUsage.task_count + 1, "last_used_at": now},
        )
    )
    await session.execute(statement)


def usage_table() -> Subquery:
    """Per voice: ``tasks`` and ``accounts``, for joining to listings."""
    return (
        select(
            VoiceUsage.voice_id.label("voice_id"),
            func.sum(VoiceUsage.task_count).label("tasks"),
            func.count().label("accounts"),
        )
        .group_by(VoiceUsage.voice_id)
        .subquery()
    )


async def usage_of(session: AsyncSession, voice_ids: Sequence[str]) -> dict[str, Usage]:
    """The usage of each of ``voice_ids`` that was ever used (others are absent)."""
    if not voice_ids:
        return {}
    table = usage_table()
    rows = await session.execute(
        select(table.c.voice_id, table.c.tasks, table.c.accounts).where(table.c.voice_id.in_(voice_ids))
    )
    return {voice_id: Usage(int(tasks), int(accounts)) for voice_id, tasks, accounts in rows}


async def forget(session: AsyncSession, voice_id: str) -> None:
    """Drop a deleted voice's counts, in the transaction that deletes it."""
    await session.execute(delete(VoiceUsage).where(VoiceUsage.voice_id == voice_id))
