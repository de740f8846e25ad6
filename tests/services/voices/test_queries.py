"""Voice listings: made and built-in voices in one order, whatever the sort, page by page."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from openfish.services.voices.queries import VoiceFilters, VoiceScope, VoiceSort, list_page
from openfish.services.voices.tasks import count_task
from openfish.store.models import Voice
from tests.conftest import Harness

ENGLISH = VoiceFilters(languages=["en"])


async def made_voices(harness: Harness, count: int) -> list[Voice]:
    """``count`` public, ready English voices of two accounts; some made at the same instant."""
    owners = [(await harness.new_caller()).account_id for _ in range(2)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    voices = [
        Voice(
            id=f"voice_{index:032x}",
            account_id=owners[index % 2],
            name=f"Made {index}",
            visibility="public",
            language="en",
            status="ready",
            base_voice="en_US-joe-medium",
            converter="world",
            reference_count=1,
            speech_seconds=3.0,
            created_at=start + timedelta(minutes=index // 2),  # pairs share their instant
        )
        for index in range(count)
    ]
    async with harness.services.db.transaction() as session:
        session.add_all(voices)
    return voices


async def listed(harness: Harness, account_id: str, sort: VoiceSort, limit: int, offset: int) -> list[str]:
    engines = harness.services.engines.speech_engines()
    scope = VoiceScope(filters=ENGLISH, sort=sort)
    async with harness.services.db.session() as session:
        page = await list_page(session, engines, account_id, scope, limit=limit, offset=offset)
    return [view.id for view in page.items]


@pytest.mark.parametrize("sort", ["created_at", "task_count", "score"])
async def test_pages_of_any_size_follow_one_order(harness: Harness, sort: VoiceSort) -> None:
    viewer = await harness.new_caller()
    made = await made_voices(harness, 9)
    builtin = [
        info.id
        for engine in harness.services.engines.speech_engines()
        for info in engine.voices()
        if info.language.lower().replace("_", "-").split("-")[0] == "en"
    ]
    users = [(await harness.new_caller()).account_id for _ in range(3)]
    tasks: dict[str, dict[str, int]] = {}
    # Usage spread over made and built-in voices alike, so that they interleave in every order.
    shuffled = [voice.id for voice in made] + builtin
    random.Random(7).shuffle(shuffled)
    async with harness.services.db.transaction() as session:
        for position, voice_id in enumerate(shuffled):
            for n in range(position % 6):
                user = users[n * position % 3]
                await count_task(session, user, voice_id)
                tasks.setdefault(voice_id, {}).setdefault(user, 0)
                tasks[voice_id][user] += 1

    def expected_key(voice_id: str) -> tuple[float | str, ...]:
        used = tasks.get(voice_id, {})
        record = next((voice for voice in made if voice.id == voice_id), None)
        tail: tuple[float | str, ...] = (
            (0, -record.created_at.timestamp(), voice_id) if record else (1, builtin.index(voice_id), "")
        )
        if sort == "task_count":
            return (-sum(used.values()), *tail)
        if sort == "score":
            return (-len(used), -sum(used.values()), *tail)
        return tail

    expected = sorted([voice.id for voice in made] + builtin, key=expected_key)
    assert await listed(harness, viewer.account_id, sort, 100, 0) == expected
    for limit in (1, 2, 3, 5):
        offsets = range(0, len(expected) + limit, limit)
        pages = [await listed(harness, viewer.account_id, sort, limit, offset) for offset in offsets]
        assert [voice_id for page in pages for voice_id in page] == expected, limit
    assert await listed(harness, viewer.account_id, sort, 4, len(expected)) == []


async def test_a_used_built_in_voice_comes_before_unused_made_ones(harness: Harness) -> None:
    viewer = await harness.new_caller()
    made = await made_voices(harness, 2)
    async with harness.services.db.transaction() as session:
        await count_task(session, viewer.account_id, "en_US-joe-medium")
    # Both made at one instant: then by id.
    by_tasks = await listed(harness, viewer.account_id, "task_count", 3, 0)
    assert by_tasks == ["en_US-joe-medium", made[0].id, made[1].id]
    newest = await listed(harness, viewer.account_id, "created_at", 3, 0)
    assert newest == [made[0].id, made[1].id, "en_US-joe-medium"]
