"""Which :class:`~openfish.jobs.queue.JobQueue` a deployment uses, from its settings: the jobs table
polled by workers on SQLite, procrastinate's dispatch on PostgreSQL (``jobs.queue`` to choose)."""

from __future__ import annotations

from openfish.config import Settings
from openfish.jobs.procrastinate_queue import ProcrastinateJobQueue
from openfish.jobs.queue import JobQueue
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.store.database import Database


def build_job_queue(db: Database, settings: Settings) -> JobQueue:
    """The job queue ``settings.job_queue`` names, on ``db``."""
    if settings.job_queue == "procrastinate":
        return ProcrastinateJobQueue(db)
    return SqlJobQueue(db)
