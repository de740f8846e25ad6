"""Transcription jobs: ``/api/open/v1/speech/transcriptions/jobs`` — submit (the sync call's JSON or
multipart inputs), read, list, cancel — and the signed downloads of their results."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from openfish.api.bodies import JSON_TYPES, MSGPACK_TYPES, read_model
from openfish.api.deps import (
    BlobsDep,
    CurrentAccount,
    IdempotencyDep,
    JobsDep,
    PoolDep,
    SettingsDep,
    SignerDep,
    TranscriptionJobsDep,
)
from openfish.api.downloads import blob_response, download_responses
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.api.transcriptions import TranscriptionJobBody, TranscriptionOut, read_form, request_body
from openfish.errors import NotFound, UnsupportedMediaType
from openfish.paths import TRANSCRIPTION_JOBS, TRANSCRIPTION_RESULTS, V1
from openfish.services.accounts.idempotency import request_fingerprint
from openfish.services.asr.captions import CAPTION_TYPES
from openfish.services.asr.jobs import TranscriptionJobs, result_key
from openfish.store.models import Job

router = APIRouter(prefix=V1, tags=["transcriptions"])

JobStatus = Literal["queued", "processing", "succeeded", "failed", "canceled"]
_JOBS = TRANSCRIPTION_JOBS.removeprefix(V1)
_RESULT = re.compile(r"^job_[0-9a-f]{32}\.(json|srt|vtt)$")
_RESULT_TYPES = {"json": "application/json", **CAPTION_TYPES}
_RESULT_MEDIA = [media.split(";")[0] for media in _RESULT_TYPES.values()]


class CaptionsOut(BaseModel):
    """Signed links to the captions (one cue per segment), valid until ``expiresAt``."""

    srtUrl: str
    vttUrl: str
    expiresAt: datetime


class TranscriptionJobSummary(BaseModel):
    """A transcription job as a page lists it (without its transcript)."""

    id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100, description="Share of the audio's seconds decoded so far.")
    model: str
    durationSeconds: float = Field(description="The audio's length, measured at submit.")
    creditsUsed: int = Field(description="Credits charged: the held amount once succeeded, else 0.")
    captions: CaptionsOut | None = Field(description="Signed caption downloads once succeeded.")
    error: str | None
    attempt: int
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None


class TranscriptionJobOut(TranscriptionJobSummary):
    """A transcription job as its account sees it."""

    transcript: TranscriptionOut | None = Field(
        description="The transcript (as the sync call answers it) once succeeded; null before, and "
        "once retention has removed it."
    )


class TranscriptionJobList(BaseModel):
    """One page of transcription jobs, newest first; items leave the transcript out (read one job
    for it) so that pages stay small."""

    total: int
    page: int
    pageSize: int
    totalPages: int
    items: list[TranscriptionJobSummary]


def job_summary(kind: TranscriptionJobs, job: Job) -> dict[str, Any]:
    """The fields of a job's wire shape but its transcript (caption links signed afresh)."""
    captions = None
    if job.status == "succeeded" and job.result is not None:
        links = kind.caption_links(job.result)
        captions = CaptionsOut(
            srtUrl=links.srt, vttUrl=links.vtt, expiresAt=datetime.fromtimestamp(links.expires, UTC)
        )
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "model": job.payload["model"],
        "durationSeconds": round(job.payload["seconds"], 3),
        "creditsUsed": job.credits if job.status == "succeeded" else 0,
        "captions": captions,
        "error": job.error,
        "attempt": job.attempt,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
    }


async def job_out(kind: TranscriptionJobs, job: Job) -> TranscriptionJobOut:
    """The wire shape of a job, with its transcript once it has one."""
    document = await kind.transcript(job.result) if job.status == "succeeded" and job.result else None
    transcript = TranscriptionOut.model_validate_json(document) if document is not None else None
    return TranscriptionJobOut(**job_summary(kind, job), transcript=transcript)


def _form_fingerprint(path: str, body: TranscriptionJobBody, data: bytes) -> str:
    # A multipart body's boundary changes from one try to the next: "the same request" is the same
    # fields and the same file contents.
    identity = {**body.model_dump(exclude={"audioUrl"}), "file": hashlib.sha256(data).hexdigest()}
    return request_fingerprint("POST", path, json.dumps(identity, sort_keys=True).encode())


@router.post(
    _JOBS,
    status_code=202,
    response_model=TranscriptionJobOut,
    responses=error_responses(402, 403, 404, 409, 413, 415, 422, 503),
    openapi_extra=request_body(TranscriptionJobBody),
)
async def submit_job(
    request: Request,
    principal: CurrentAccount,
    kind: TranscriptionJobsDep,
    idempotency: IdempotencyDep,
    pool: PoolDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a transcription (the sync call's inputs); the price (per second of audio) is held
    until the job ends. Every refusal of the sync call happens here, before anything is charged."""
    account_id = principal.account_id
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        body, data = await read_form(request, TranscriptionJobBody)
        fingerprint = await pool.submit(lambda: _form_fingerprint(request.url.path, body, data))

        async def submit() -> tuple[int, dict[str, Any]]:
            job = await kind.submit(
                account_id, data, language=body.language, words=body.words, model=body.model
            )
            return 202, (await job_out(kind, job)).model_dump(mode="json")

    elif media_type in (*JSON_TYPES, *MSGPACK_TYPES):
        fingerprint = request_fingerprint("POST", request.url.path, await request.body())

        async def submit() -> tuple[int, dict[str, Any]]:
            fields = await read_model(request, TranscriptionJobBody)
            audio = await kind.audio_from_url(
                account_id, fields.audioUrl, model=fields.model, language=fields.language
            )
            job = await kind.submit(
                account_id, audio, language=fields.language, words=fields.words, model=fields.model
            )
            return 202, (await job_out(kind, job)).model_dump(mode="json")

    else:
        raise UnsupportedMediaType("Send JSON with audioUrl, or multipart/form-data with the file.")
    return await run_once(idempotency, account_id, idempotency_key, fingerprint, submit)


@router.get(_JOBS, response_model=TranscriptionJobList, responses=error_responses())
async def list_jobs(
    principal: CurrentAccount,
    jobs: JobsDep,
    kind: TranscriptionJobsDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TranscriptionJobList:
    """The account's transcription jobs, newest first (without transcripts)."""
    page = await jobs.page(principal.account_id, kind, status, limit, offset)
    return TranscriptionJobList(
        total=page.total,
        page=offset // limit + 1,
        pageSize=limit,
        totalPages=page.pages(limit),
        items=[TranscriptionJobSummary(**job_summary(kind, job)) for job in page.items],
    )


@router.get(_JOBS + "/{job_id}", response_model=TranscriptionJobOut, responses=error_responses(404))
async def get_job(
    job_id: str, principal: CurrentAccount, jobs: JobsDep, kind: TranscriptionJobsDep
) -> TranscriptionJobOut:
    """One of the account's transcription jobs (poll every few seconds for ``progress``)."""
    return await job_out(kind, await jobs.get(principal.account_id, kind, job_id))


@router.post(
    _JOBS + "/{job_id}/cancel", response_model=TranscriptionJobOut, responses=error_responses(404, 409)
)
async def cancel_job(
    job_id: str, principal: CurrentAccount, jobs: JobsDep, kind: TranscriptionJobsDep
) -> TranscriptionJobOut:
    """Cancel a queued job; its credits are released (a job that started or ended → 409)."""
    return await job_out(kind, await jobs.cancel(principal.account_id, kind, job_id))


@router.get(
    TRANSCRIPTION_RESULTS.removeprefix(V1) + "/{name}",
    response_class=StreamingResponse,
    responses=download_responses("The transcript or captions", _RESULT_MEDIA, "No such file."),
)
async def result_file(
    name: str,
    request: Request,
    signer: SignerDep,
    blobs: BlobsDep,
    pool: PoolDep,
    settings: SettingsDep,
    expires: Annotated[str | None, Query(description="Expiry, Unix seconds.")] = None,
    sig: Annotated[str | None, Query(description="The URL's signature.")] = None,
) -> Response:
    """A succeeded job's transcript (``.json``) or captions (``.srt``, ``.vtt``) while its URL is
    valid (the signature is the credential)."""
    found = _RESULT.match(name)
    if found is None:
        raise NotFound("No such file.")
    signer.verify(name, expires, sig)
    return await blob_response(
        request,
        blobs,
        pool,
        result_key(name),
        media_type=_RESULT_TYPES[found.group(1)],
        ttl_seconds=settings.asr.result_url_ttl_seconds,
        headers={"Cache-Control": "private, max-age=300"},
        missing="No such file.",
    )
