"""Listing voices: which made voices an account may list, the filters, the sort orders, and one
page of made and built-in voices in one order.

Made voices are rows; built-in voices come from the engines, in memory. A page of both is merged:
the rows are read from ``offset - (number of built-in voices)`` on (no earlier row can land on the
page), at most ``limit + (number of built-in voices)`` of them, and merged with the sorted
built-in voices. At equal usage a made voice comes before a
built-in one, so ``created_at`` (newest first) lists every made voice, then the built-in ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Subquery, Text, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.engines.base import SpeechEngine, VoiceInfo
from openfish.services.voices.tasks import Usage, usage_of, usage_table
from openfish.services.voices.views import CUSTOM_PROVIDER, VoicePage, VoiceView, builtin_view, custom_view
from openfish.store.models import Voice

#: ``created_at``: newest first. ``task_count``: most tasks first. ``score``: used by the most
#: accounts first, then most tasks. Ties: newest first, built-in voices last, in engine order.
VoiceSort = Literal["created_at", "task_count", "score"]


@dataclass(frozen=True)
class VoiceFilters:
    """Narrowing a listing: a piece of the name, every one of ``tags``, any one of ``languages``
    (``en`` matches ``en-US``). Built-in voices have no tags, so a tag filter leaves them out.
    ``author``: only voices that account made, as far as the caller may list them (its own: all;
    another's: the public, ready ones; an unknown id: none); no built-in voices."""

    name: str | None = None
    tags: Sequence[str] = ()
    languages: Sequence[str] = ()
    author: str | None = None


@dataclass(frozen=True)
class VoiceScope:
    """Which voices a listing covers: ``provider`` (``custom``: made voices; an engine: its
    voices; None: all), ``search`` (name and description; built-ins: id, name, language),
    ``personal_only`` (the caller's own made voices), ``others_only`` (none of them; both: none)."""

    provider: str | None = None
    search: str | None = None
    personal_only: bool = False
    others_only: bool = False
    include_builtin: bool = True
    filters: VoiceFilters = VoiceFilters()
    sort: VoiceSort = "created_at"


async def list_page(
    session: AsyncSession,
    engines: Sequence[SpeechEngine],
    account_id: str,
    scope: VoiceScope,
    *,
    limit: int,
    offset: int,
) -> VoicePage:
    """One page of the voices ``scope`` covers for ``account_id``; filtered before paging, so
    totals and pages count what is listed."""
    if scope.personal_only and scope.others_only:
        return VoicePage(total=0, items=[])
    narrow = scope.filters
    needle = (scope.search or "").strip().lower()
    conditions = (
        _conditions(account_id, needle, scope, narrow) if scope.provider in (None, CUSTOM_PROVIDER) else None
    )
    custom_total = 0
    if conditions is not None:
        counted = select(func.count()).select_from(Voice).where(*conditions)
        custom_total = int(await session.scalar(counted) or 0)
    infos: list[VoiceInfo] = []
    if not scope.personal_only and scope.include_builtin and narrow.author is None:
        infos = _builtins(engines, scope.provider, needle, narrow)
    usage = await usage_of(session, [info.id for info in infos])
    views = [builtin_view(info, usage.get(info.id)) for info in infos]
    builtins = sorted(
        ((_rank(scope.sort, view.usage, None, ordinal), view) for ordinal, view in enumerate(views)),
        key=lambda ranked: ranked[0],
    )
    total = custom_total + len(builtins)
    # No row before ``start`` can be on the page: at most len(builtins) voices come before it,
    # and ``limit + len(builtins)`` rows from it are all the page can take.
    start = max(0, offset - len(builtins))
    window: list[VoiceView] = []
    if conditions is not None and start < custom_total:
        table = usage_table()
        rows = await session.execute(
            select(Voice, table.c.tasks, table.c.accounts)
            .outerjoin(table, table.c.voice_id == Voice.id)
            .where(*conditions)
            .order_by(*_order(scope.sort, table))
            .offset(start)
            .limit(limit + len(builtins) + 1)
        )
        window = [
            custom_view(voice, account_id, Usage(int(tasks or 0), int(accounts or 0)))
            for voice, tasks, accounts in rows
        ]
    if start > 0 and not window:
        return VoicePage(total=total, items=[])  # the page lies past the end
    ranked = [(_rank(scope.sort, view.usage, _made(view), 0), view) for view in window]
    # Merged from the window's first row and the first built-in voice, the voices stand at
    # ``start`` on (the built-in voices that rank before that row come first in the merge too).
    skip = offset - start
    items: list[VoiceView] = []
    made, built = 0, 0
    while len(items) < skip + limit and (made < len(ranked) or built < len(builtins)):
        if built >= len(builtins) or (made < len(ranked) and ranked[made][0] < builtins[built][0]):
            items.append(ranked[made][1])
            made += 1
        else:
            items.append(builtins[built][1])
            built += 1
    return VoicePage(total=total, items=items[skip:])


def _made(view: VoiceView) -> datetime:
    assert view.record is not None  # a made voice
    return view.record.created_at


def _rank(sort: VoiceSort, usage: Usage, made: datetime | None, ordinal: int) -> tuple[float, ...]:
    """The sort key of a voice (smaller first), made (``made``: when) or built-in (``ordinal``:
    its place in engine order). Only compared between a made and a built-in voice, or between
    built-in ones: made voices among themselves are in the database's order (:func:`_order`)."""
    tail = (0.0, -made.timestamp()) if made is not None else (1.0, float(ordinal))
    if sort == "task_count":
        return (-float(usage.tasks), *tail)
    if sort == "score":
        return (-float(usage.accounts), -float(usage.tasks), *tail)
    return tail


def _order(sort: VoiceSort, table: Subquery) -> list[Any]:
    tasks = func.coalesce(table.c.tasks, 0)
    accounts = func.coalesce(table.c.accounts, 0)
    newest = [Voice.created_at.desc(), Voice.id]
    if sort == "task_count":
        return [tasks.desc(), *newest]
    if sort == "score":
        return [accounts.desc(), tasks.desc(), *newest]
    return newest


def _conditions(
    account_id: str, needle: str, scope: VoiceScope, narrow: VoiceFilters
) -> list[ColumnElement[bool]]:
    """Which made voices are listed, as portable SQL (LIKE on the name, the language and the
    tags' stored JSON text: checked tags hold no quotes or backslashes, so ``"tag"`` is one whole
    tag)."""
    mine: ColumnElement[bool] = Voice.account_id == account_id
    shared = and_(Voice.visibility == "public", Voice.status == "ready")
    if scope.personal_only:
        visible = mine
    elif scope.others_only:
        visible = and_(Voice.account_id != account_id, shared)
    else:
        visible = or_(mine, shared)
    conditions = [visible]
    if narrow.author is not None:
        conditions.append(Voice.account_id == narrow.author)
    if needle:
        pattern = f"%{needle.replace('%', '').replace('_', '')}%"
        conditions.append(
            or_(func.lower(Voice.name).like(pattern), func.lower(Voice.description).like(pattern))
        )
    name = (narrow.name or "").strip().lower()
    if name:
        conditions.append(func.lower(Voice.name).like(f"%{_like(name)}%", escape="!"))
    stored_tags = func.lower(cast(Voice.tags, Text))
    for tag in narrow.tags:
        conditions.append(stored_tags.like(f"%{_like(json.dumps(tag.lower()))}%", escape="!"))
    if narrow.languages:
        language = func.lower(Voice.language)
        conditions.append(
            or_(
                *(
                    or_(language == code.lower(), language.like(f"{_like(code.lower())}-%", escape="!"))
                    for code in narrow.languages
                )
            )
        )
    return conditions


def _builtins(
    engines: Sequence[SpeechEngine], provider: str | None, needle: str, narrow: VoiceFilters
) -> list[VoiceInfo]:
    if narrow.tags:
        return []
    name = (narrow.name or "").strip().lower()
    languages = {language.lower() for language in narrow.languages}
    found = []
    for engine in engines:
        if provider not in (None, engine.name):
            continue
        for info in engine.voices():
            if needle and needle not in f"{info.id} {info.name} {info.language}".lower():
                continue
            if name and name not in f"{info.id} {info.name}".lower():
                continue
            if languages and not _speaks(info.language, languages):
                continue
            found.append(info)
    return found


def _like(text: str) -> str:
    """``text`` escaped for LIKE with ``!`` as the escape character."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _speaks(language: str, codes: set[str]) -> bool:
    """Whether a voice of ``language`` (``en-us``, ``en_US``) speaks one of ``codes``."""
    spoken = language.lower().replace("_", "-")
    return any(spoken == code or spoken.startswith(f"{code}-") for code in codes)
