"""Lip sync: ``/api/open/v1/media/lip-sync/jobs`` (submit, list, read), the legacy
``/api/open/lip-sync/{create,list,query}``, and the signed result download.

Answers are ``{success, message, data}``; job fields are snake_case as the contract names them.
Statuses on the wire: ``pending`` (queued), ``processing``, ``completed``, ``failed``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import (
    BlobsDep,
    CurrentAccount,
    IdempotencyDep,
    JobsDep,
    LipSyncDep,
    PoolDep,
    SettingsDep,
    SignerDep,
)
from openfish.api.downloads import blob_response, download_responses
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.errors import NotFound
from openfish.jobs.queue import FAILED, PROCESSING, QUEUED, SUCCEEDED
from openfish.jobs.service import JobService
from openfish.paths import LEGACY, LIPSYNC_RESULTS, V1
from openfish.services.accounts.idempotency import IdempotencyService, request_fingerprint
from openfish.services.media.lipsync import AREA, LipSyncJobs
from openfish.store.models import Job

router = APIRouter(prefix=f"{V1}/media/lip-sync", tags=["lip sync"])
legacy_router = APIRouter(prefix=LEGACY, tags=["legacy"])

WireStatus = Literal["pending", "processing", "completed", "failed"]
#: The filter's wire status → the queue's (the kind's one map, read backwards).
_FROM_WIRE = {
    LipSyncJobs.wire_status.get(status, status): status for status in (QUEUED, PROCESSING, SUCCEEDED, FAILED)
}
_RESULT = re.compile(r"^job_[0-9a-f]{32}\.mp4$")


class LipSyncBody(BaseModel):
    """A video and the audio its mouth should follow: URLs of files this server holds (uploads,
    stored audio) or, when the operator allows it, external http(s) URLs."""

    model_config = ConfigDict(extra="forbid")

    videoUrl: str = Field(min_length=1, max_length=4096)
    audioUrl: str = Field(min_length=1, max_length=4096)


class LipSyncJob(BaseModel):
    """A lip-sync job as its account sees it."""

    id: str
    status: WireStatus
    progress: int = Field(ge=0, le=100)
    result_url: str | None = Field(description="Signed URL of the MP4 once completed.")
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    credits_used: int


class LipSyncCreatedData(BaseModel):
    id: str
    status: WireStatus


class LipSyncCreated(BaseModel):
    success: bool
    message: str
    data: LipSyncCreatedData


class LipSyncJobAnswer(BaseModel):
    success: bool
    message: str
    data: LipSyncJob


class LipSyncPageData(BaseModel):
    items: list[LipSyncJob]
    total: int
    page: int
    limit: int
    total_pages: int


class LipSyncPage(BaseModel):
    success: bool
    message: str
    data: LipSyncPageData


def job_out(lipsync: LipSyncJobs, job: Job) -> LipSyncJob:
    """The wire shape of a job (a freshly signed result URL once completed)."""
    completed = job.status == "succeeded"
    return LipSyncJob(
        id=job.id,
        status=cast(WireStatus, lipsync.wire(job.status)),
        progress=job.progress,
        result_url=lipsync.result_url(job.result)[0] if completed and job.result else None,
        error_message=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.finished_at if completed else None,
        credits_used=job.credits if completed else 0,
    )


async def _submit(
    request: Request,
    account_id: str,
    lipsync: LipSyncJobs,
    idempotency: IdempotencyService,
    key: str | None,
) -> JSONResponse:
    fingerprint = request_fingerprint("POST", request.url.path, await request.body())

    async def submit() -> tuple[int, dict[str, Any]]:
        body = await read_model(request, LipSyncBody)
        job = await lipsync.submit(account_id, body.videoUrl, body.audioUrl)
        data = LipSyncCreatedData(id=job.id, status="pending")
        return 202, LipSyncCreated(success=True, message="lip-sync job queued", data=data).model_dump()

    return await run_once(idempotency, account_id, key, fingerprint, submit)


async def _page(
    jobs: JobService,
    lipsync: LipSyncJobs,
    account_id: str,
    status: WireStatus | None,
    page: int,
    limit: int,
) -> LipSyncPage:
    found = await jobs.page(
        account_id, lipsync, _FROM_WIRE[status] if status else None, limit, (page - 1) * limit
    )
    data = LipSyncPageData(
        items=[job_out(lipsync, job) for job in found.items],
        total=found.total,
        page=page,
        limit=limit,
        total_pages=found.pages(limit),
    )
    return LipSyncPage(success=True, message="ok", data=data)


async def _one(jobs: JobService, lipsync: LipSyncJobs, account_id: str, job_id: str) -> LipSyncJobAnswer:
    job = await jobs.get(account_id, lipsync, job_id)
    return LipSyncJobAnswer(success=True, message="ok", data=job_out(lipsync, job))


Page = Annotated[int, Query(ge=1, le=100_000)]
Limit = Annotated[int, Query(ge=1, le=50)]
_SUBMIT_ERRORS = (402, 403, 404, 409, 413, 415, 422, 503)


@router.post(
    "/jobs",
    status_code=202,
    response_model=LipSyncCreated,
    responses=error_responses(*_SUBMIT_ERRORS),
    openapi_extra=body_schema(LipSyncBody),
)
async def submit_job(
    request: Request,
    principal: CurrentAccount,
    lipsync: LipSyncDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a lip-sync job; credits (per second of output) are held until it ends."""
    return await _submit(request, principal.account_id, lipsync, idempotency, idempotency_key)


@router.get("/jobs", response_model=LipSyncPage, responses=error_responses())
async def list_jobs(
    principal: CurrentAccount,
    jobs: JobsDep,
    lipsync: LipSyncDep,
    page: Page = 1,
    limit: Limit = 20,
    status: WireStatus | None = None,
) -> LipSyncPage:
    """The account's lip-sync jobs, newest first."""
    return await _page(jobs, lipsync, principal.account_id, status, page, limit)


@router.get("/jobs/{job_id}", response_model=LipSyncJobAnswer, responses=error_responses(404))
async def get_job(
    job_id: str, principal: CurrentAccount, jobs: JobsDep, lipsync: LipSyncDep
) -> LipSyncJobAnswer:
    """One of the account's lip-sync jobs (poll every few seconds)."""
    return await _one(jobs, lipsync, principal.account_id, job_id)


@router.get(
    LIPSYNC_RESULTS.removeprefix(router.prefix) + "/{name}",
    response_class=StreamingResponse,
    responses=download_responses("The video", ["video/mp4"], "No such video."),
)
async def result_video(
    name: str,
    request: Request,
    signer: SignerDep,
    blobs: BlobsDep,
    pool: PoolDep,
    settings: SettingsDep,
    expires: Annotated[str | None, Query(description="Expiry, Unix seconds.")] = None,
    sig: Annotated[str | None, Query(description="The URL's signature.")] = None,
) -> Response:
    """A completed job's MP4 while its URL is valid (the signature is the credential)."""
    if not _RESULT.match(name):
        raise NotFound("No such video.")
    signer.verify(name, expires, sig)
    return await blob_response(
        request,
        blobs,
        pool,
        f"{AREA}/{name}",
        media_type="video/mp4",
        ttl_seconds=settings.lipsync.result_url_ttl_seconds,
        headers={"Cache-Control": "private, max-age=300"},
        missing="No such video.",
    )


@legacy_router.post(
    "/lip-sync/create",
    status_code=202,
    response_model=LipSyncCreated,
    responses=error_responses(*_SUBMIT_ERRORS, legacy=True),
    openapi_extra=body_schema(LipSyncBody),
)
async def legacy_create(
    request: Request,
    principal: CurrentAccount,
    lipsync: LipSyncDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a lip-sync job (legacy path)."""
    return await _submit(request, principal.account_id, lipsync, idempotency, idempotency_key)


@legacy_router.get("/lip-sync/list", response_model=LipSyncPage, responses=error_responses(legacy=True))
async def legacy_list(
    principal: CurrentAccount,
    jobs: JobsDep,
    lipsync: LipSyncDep,
    page: Page = 1,
    limit: Limit = 20,
    status: WireStatus | None = None,
) -> LipSyncPage:
    """The account's lip-sync jobs (legacy path)."""
    return await _page(jobs, lipsync, principal.account_id, status, page, limit)


@legacy_router.get(
    "/lip-sync/query", response_model=LipSyncJobAnswer, responses=error_responses(404, legacy=True)
)
async def legacy_query(
    principal: CurrentAccount,
    jobs: JobsDep,
    lipsync: LipSyncDep,
    id: Annotated[str, Query(min_length=1, max_length=80)],
) -> LipSyncJobAnswer:
    """One lip-sync job by ``id`` (legacy path)."""
    return await _one(jobs, lipsync, principal.account_id, id)
