"""The Fish Audio wallet's month: where this month's package starts and ends."""

from __future__ import annotations

from datetime import UTC, datetime

from openfish.services.accounts.fish_wallet import month_bounds


def test_a_month_runs_from_its_first_instant_to_the_next_months() -> None:
    assert month_bounds(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )


def test_december_ends_in_the_next_year() -> None:
    assert month_bounds(datetime(2026, 12, 15, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
