"""``openfish queue ...``: procrastinate's admin CLI on this deployment's job queue (PostgreSQL).

Everything after ``queue`` goes to procrastinate's own command line, with the app built from
openfish's settings instead of an import path: ``openfish queue healthchecks``, ``openfish queue
shell list_jobs``, ``openfish queue shell`` (interactive: list, retry and cancel jobs). See
docs/scaling.md for what retrying or cancelling a dispatch row does to an openfish job.
"""

from __future__ import annotations

import asyncio

import procrastinate.cli
import typer
from rich.console import Console

from openfish.config import Settings
from openfish.jobs.procrastinate_queue import ProcrastinateJobQueue
from openfish.store.database import Database

errors = Console(stderr=True)


def queue(ctx: typer.Context) -> None:
    """procrastinate's admin CLI on the job queue (arguments go to it; try `openfish queue --help`)."""
    settings = Settings()
    if settings.job_queue != "procrastinate":
        errors.print("[red]error:[/red] the job queue is not procrastinate (PostgreSQL only; see jobs.queue)")
        raise typer.Exit(1)
    # An empty --app makes procrastinate build a placeholder, replaced below by this deployment's.
    parsed = procrastinate.cli.parse_args(["--app=", *ctx.args])
    procrastinate.cli.configure_logging(
        verbosity=parsed.pop("verbose", None),
        log_level=parsed.pop("log_level", None),
        format=parsed.pop("log_format"),
        style=parsed.pop("log_format_style"),
    )

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()  # procrastinate's schema comes with openfish's migrations
            parsed["app"] = ProcrastinateJobQueue(db).app
            await procrastinate.cli.execute_command(parsed)
        finally:
            await db.dispose()

    asyncio.run(run())
