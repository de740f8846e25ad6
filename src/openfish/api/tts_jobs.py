"""Async TTS: ``/api/open/v1/speech/tts/jobs`` — submit, read, list, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import CurrentAccount, IdempotencyDep, JobsDep, TtsJobsDep
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.api.tts import TtsBody
from openfish.paths import V1
from openfish.services.accounts.idempotency import request_fingerprint
from openfish.services.tts.jobs import TtsJobs
from openfish.store.models import Job

router = APIRouter(prefix=V1, tags=["tts"])

JobStatus = Literal["queued", "processing", "succeeded", "failed", "canceled"]


class TtsJobOut(BaseModel):
    """A TTS job as its account sees it."""

    id: str
    status: JobStatus
    audioUrl: str | None = Field(description="Signed URL of the audio once succeeded.")
    audioUrlExpiresAt: datetime | None
    format: str
    characters: int | None
    creditsUsed: int = Field(description="Credits charged: the held amount once succeeded, else 0.")
    error: str | None
    attempt: int
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None


class TtsJobList(BaseModel):
    """One page of TTS jobs."""

    total: int
    page: int
    pageSize: int
    totalPages: int
    items: list[TtsJobOut]


def job_out(tts_jobs: TtsJobs, job: Job) -> TtsJobOut:
    """The wire shape of a job (with a freshly signed audio URL when it has audio)."""
    url, expires = (None, None)
    if job.status == "succeeded" and job.result:
        url, stamp = tts_jobs.result_url(job.result)
        expires = datetime.fromtimestamp(stamp, UTC)
    return TtsJobOut(
        id=job.id,
        status=job.status,
        audioUrl=url,
        audioUrlExpiresAt=expires,
        format=job.payload.get("format", "mp3"),
        characters=(job.result or {}).get("characters"),
        creditsUsed=job.credits if job.status == "succeeded" else 0,
        error=job.error,
        attempt=job.attempt,
        createdAt=job.created_at,
        updatedAt=job.updated_at,
        startedAt=job.started_at,
        finishedAt=job.finished_at,
    )


@router.post(
    "/speech/tts/jobs",
    status_code=202,
    response_model=TtsJobOut,
    responses=error_responses(402, 404, 409, 415, 503),
    openapi_extra=body_schema(TtsBody),
)
async def submit_job(
    request: Request,
    principal: CurrentAccount,
    tts_jobs: TtsJobsDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a TTS job (same body as sync TTS); credits are held until it ends."""
    fingerprint = request_fingerprint("POST", request.url.path, await request.body())

    async def submit() -> tuple[int, dict[str, Any]]:
        body = await read_model(request, TtsBody)
        job = await tts_jobs.submit(principal.account_id, body.to_request())
        return 202, job_out(tts_jobs, job).model_dump(mode="json")

    return await run_once(idempotency, principal.account_id, idempotency_key, fingerprint, submit)


@router.get("/speech/tts/jobs", response_model=TtsJobList, responses=error_responses())
async def list_jobs(
    principal: CurrentAccount,
    jobs: JobsDep,
    tts_jobs: TtsJobsDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TtsJobList:
    """The account's TTS jobs, newest first."""
    page = await jobs.page(principal.account_id, tts_jobs, status, limit, offset)
    return TtsJobList(
        total=page.total,
        page=offset // limit + 1,
        pageSize=limit,
        totalPages=page.pages(limit),
        items=[job_out(tts_jobs, job) for job in page.items],
    )


@router.get("/speech/tts/jobs/{job_id}", response_model=TtsJobOut, responses=error_responses(404))
async def get_job(job_id: str, principal: CurrentAccount, jobs: JobsDep, tts_jobs: TtsJobsDep) -> TtsJobOut:
    """One of the account's TTS jobs."""
    return job_out(tts_jobs, await jobs.get(principal.account_id, tts_jobs, job_id))


@router.post(
    "/speech/tts/jobs/{job_id}/cancel", response_model=TtsJobOut, responses=error_responses(404, 409)
)
async def cancel_job(
    job_id: str, principal: CurrentAccount, jobs: JobsDep, tts_jobs: TtsJobsDep
) -> TtsJobOut:
    """Cancel a queued job; its credits are released."""
    return job_out(tts_jobs, await jobs.cancel(principal.account_id, tts_jobs, job_id))
