"""``openfish queue``: procrastinate's admin CLI on the deployment's own job queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openfish.cli import app
from openfish.config import Settings
from openfish.container import build_services
from openfish.services.tts.planner import TtsRequest
from tests.postgres import fresh_database


def queue_a_job(settings: Settings) -> str:
    """A TTS job accepted the way the API accepts one; its id."""

    async def submit() -> str:
        services = build_services(settings)
        await services.db.migrate()
        try:
            account = await services.accounts.create_account(name="queue-cli", tier="pro", credits=1000)
            job = await services.tts_jobs.submit(account.id, TtsRequest(text="Hello."))
            return job.id
        finally:
            await services.db.dispose()

    return asyncio.run(submit())


def test_the_admin_cli_lists_the_jobs_procrastinate_dispatches(
    postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database(postgres)
    monkeypatch.setenv("OPENFISH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENFISH_DATABASE__URL", url)
    job_id = queue_a_job(Settings())
    result = CliRunner().invoke(app, ["queue", "shell", "list_jobs", "details"])
    assert result.exit_code == 0, result.output
    assert "openfish.job on tts - [todo]" in result.output  # task, queue = the kind, status
    assert job_id in result.output  # the dispatch row's arguments name the openfish job
    health = CliRunner().invoke(app, ["queue", "healthchecks"])
    assert health.exit_code == 0, health.output


def test_the_admin_cli_needs_procrastinate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENFISH_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["queue", "healthchecks"])
    assert result.exit_code == 1
    assert "not procrastinate" in result.output
