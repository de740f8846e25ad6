"""What a kind of job is: its payload, how it runs, what it settles, what it tells the webhook.

Every piece of background work (TTS jobs, lip-sync renders, voice analysis) is a :class:`JobKind`
registered with :class:`~openfish.jobs.service.JobService`, which gives all of them the same
submit-with-hold (one transaction), read, page, cancel, progress, settle-with-webhook (one
transaction) and clean-up-after-commit. A new kind is one module: a subclass with a payload
dataclass and a ``run``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.store.models import Job

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = TypeVar("P", bound="DataclassInstance")


class JobFailed(Exception):
    """The job cannot succeed (bad input discovered late, engine refused): fail it, no retry."""


class Progress:
    """How far the running attempt is, as the kind last said; callable from any thread (one int
    written and read whole). The worker writes it to the job about once a second."""

    def __init__(self) -> None:
        self.percent = 0

    def __call__(self, fraction: float) -> None:
        # 100 is written with the job's terminal state, never before it.
        self.percent = max(0, min(99, int(fraction * 100)))


@dataclass(frozen=True)
class BlobArea:
    """Blobs kept under ``<area>/`` whose names end in ``suffix``; a job kind's names start with
    the job's id (``<area>/job_<hex>…<suffix>``)."""

    area: str
    suffix: str = ""

    def holds(self, key: str) -> bool:
        """Whether ``key`` is one of these blobs."""
        return key.startswith(f"{self.area}/job_") and key.endswith(self.suffix)

    @staticmethod
    def job_id(key: str) -> str:
        """The job a kept blob belongs to (its name starts with the job's id, ``job_<hex>``)."""
        name = key.rsplit("/", 1)[-1]
        return "_".join(name.split("_", 2)[:2]).split(".", 1)[0]


def job_hold_reference(job_id: str) -> str:
    """Ledger reference of a job's held credits (the default for every kind)."""
    return f"job:{job_id}"


class JobKind(ABC, Generic[P]):
    """One kind of background work.

    Subclasses set the class attributes and implement :meth:`run`; the hooks have defaults that
    suit a job whose whole outcome is its result and its credits.
    """

    #: The queue's name for the kind (``jobs.kind``).
    name: ClassVar[str]
    #: The dataclass the payload is stored as (``jobs.payload`` holds its fields as JSON).
    payload_type: type[P]
    #: The usage surface its credits are counted under.
    surface: ClassVar[str]
    #: How a 404 names it: "job", "lip-sync job"…
    noun: ClassVar[str] = "job"
    #: Webhook event types are ``<event_prefix>.<wire status>``; None sends no webhook.
    event_prefix: ClassVar[str | None] = None
    #: Queue status → the status clients see, where the kind's API names them differently.
    wire_status: ClassVar[Mapping[str, str]] = {}
    #: Where results are kept; retention deletes them ``retention.job_results_seconds`` after.
    results: ClassVar[BlobArea | None] = None
    #: Where inputs are kept while the job is open; ``cleanup`` deletes them when it ends, and
    #: retention removes any a failed clean-up left behind.
    inputs: ClassVar[BlobArea | None] = None

    def dump(self, payload: P) -> dict[str, Any]:
        """The payload as stored with the job."""
        return asdict(payload)

    def payload(self, job: Job) -> P:
        """The job's payload, typed."""
        return self.payload_type(**job.payload)

    def wire(self, status: str) -> str:
        """The status clients see for a queue status."""
        return self.wire_status.get(status, status)

    def hold_reference(self, job: Job) -> str:
        """Ledger reference of the credits held for ``job``."""
        return job_hold_reference(job.id)

    @abstractmethod
    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Do the work and return the job's result (JSON). Raise :class:`JobFailed` for a failure
        a retry would not fix; any other exception is retried. Writes must be idempotent (an
        attempt may run twice): results go to keys derived from the job's id."""

    def result_url(self, result: dict[str, Any]) -> tuple[str, int] | None:
        """An absolute signed link to the result and when it expires (Unix seconds), if any."""
        return None

    async def settled(self, job: Job, status: str, error: str | None, session: AsyncSession) -> bool:
        """The kind's own rows, in the transaction that ends the job. Returns False when what the
        job was for is gone (deleted meanwhile): its credits are then released, never captured."""
        return True

    async def cleanup(self, job: Job) -> None:
        """File work once the job's end is committed (never under the transaction): delete kept
        inputs. Best effort — retention removes what a crash here leaves behind."""
