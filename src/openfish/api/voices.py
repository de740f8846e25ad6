"""Voices: ``/api/open/v1/voices`` — create from reference audio, list, get, delete."""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openfish.api.deps import CurrentAccount, ServicesDep
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.container import Services
from openfish.errors import InvalidRequest
from openfish.services.accounts.idempotency import request_fingerprint
from openfish.services.voices.catalog import VoiceView
from openfish.services.voices.uploads import Upload, check_uploads

router = APIRouter(prefix="/api/open/v1", tags=["voices"])

Visibility = Literal["private", "unlist", "public"]


class VoiceOut(BaseModel):
    """A voice: built-in (provider = its engine) or made from reference audio (provider ``custom``)."""

    id: str
    name: str
    provider: str = Field(examples=["custom", "piper", "kokoro", "espeak"])
    language: str
    description: str
    visibility: str
    status: str = Field(description="processing, ready or failed; built-in voices are ready.")
    failureReason: str | None
    isPersonal: bool = Field(description="Whether the calling account made this voice.")
    speechSeconds: float | None = Field(description="Seconds of speech in the reference audio.")
    createdAt: datetime | None
    updatedAt: datetime | None


class VoiceList(BaseModel):
    """One page of voices."""

    total: int
    page: int
    pageSize: int
    totalPages: int
    items: list[VoiceOut]


def voice_out(view: VoiceView) -> VoiceOut:
    """The wire shape of a voice."""
    record = view.record
    return VoiceOut(
        id=view.id,
        name=view.name,
        provider=view.provider,
        language=view.language,
        description=view.description,
        visibility=view.visibility,
        status=view.status,
        failureReason=view.failure_reason,
        isPersonal=view.is_personal,
        speechSeconds=record.speech_seconds if record else None,
        createdAt=record.created_at if record else None,
        updatedAt=record.updated_at if record else None,
    )


@dataclass(frozen=True)
class VoiceForm:
    """A voice creation request, parsed (shared by the v1 and legacy paths)."""

    name: str
    description: str
    visibility: str
    language: str
    uploads: list[Upload]
    transcripts: list[str]

    @classmethod
    async def read(
        cls,
        request: Request,
        *,
        name: str,
        description: str,
        visibility: str,
        language: str,
        files: list[UploadFile],
        transcripts: list[str],
    ) -> VoiceForm:
        """The form with its files read; 400 for fields this path does not know (as for unknown
        JSON fields), more transcripts than files, or control characters in the texts."""
        unknown = sorted(set((await request.form()).keys()) - FORM_FIELDS)
        if unknown:
            expected = ", ".join(sorted(FORM_FIELDS))
            raise InvalidRequest(f"{', '.join(unknown)}: unknown field; expected {expected}")
        if len(transcripts) > len(files):
            raise InvalidRequest(f"transcripts: {len(transcripts)} given for {len(files)} audio files")
        for label, text in (("name", name), ("description", description), *_numbered(transcripts)):
            if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in text):
                raise InvalidRequest(f"{label}: must not contain control characters")
        if "\n" in name or "\t" in name or not name.strip():
            raise InvalidRequest("name: must be one line of visible text")
        uploads = [Upload(filename=file.filename or "", data=await file.read()) for file in files]
        return cls(name, description, visibility, language, uploads, transcripts)

    def fingerprint(self, path: str) -> str:
        """Identity for Idempotency-Key: the fields and each file's content (a multipart body's
        boundary changes from one try to the next, so the raw body cannot be compared)."""
        identity = {
            "name": self.name,
            "description": self.description,
            "visibility": self.visibility,
            "language": self.language,
            "transcripts": self.transcripts,
            "files": [[u.filename, hashlib.sha256(u.data).hexdigest()] for u in self.uploads],
        }
        return request_fingerprint("POST", path, json.dumps(identity, sort_keys=True).encode())


#: Every field voice creation takes (v1 and legacy alike).
FORM_FIELDS = frozenset({"name", "description", "visibility", "language", "transcripts", "audioFiles"})
#: What ``language`` looks like; which languages voices can be made for is the service's rule.
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"


def _numbered(texts: list[str]) -> list[tuple[str, str]]:
    return [(f"transcripts[{index}]", text) for index, text in enumerate(texts)]


async def create_voice(services: Services, account_id: str, form: VoiceForm) -> VoiceView:
    """Check the uploads, store the voice and queue its analysis."""
    rules = services.settings.voices
    references = await services.pool.submit(lambda: check_uploads(form.uploads, rules))
    voice = await services.voices.create(
        account_id,
        name=form.name,
        description=form.description,
        visibility=form.visibility,
        language=form.language,
        references=references,
        transcripts=form.transcripts,
    )
    return await services.voices.get(account_id, voice.id)


@router.post(
    "/voices", status_code=201, response_model=VoiceOut, responses=error_responses(402, 409, 415, 422)
)
async def create(
    request: Request,
    principal: CurrentAccount,
    services: ServicesDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    audio_files: Annotated[
        list[UploadFile], File(alias="audioFiles", description="1-20 reference recordings of one speaker.")
    ],
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[Visibility, Form()] = "private",
    language: Annotated[str, Form(pattern=LANGUAGE_PATTERN)] = "en",
    transcripts: Annotated[list[str] | None, Form(description="Optional transcript per file.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Make a voice from reference audio; it is ``processing`` until its analysis is done."""
    form = await VoiceForm.read(
        request,
        name=name,
        description=description,
        visibility=visibility,
        language=language,
        files=audio_files,
        transcripts=transcripts or [],
    )

    async def make() -> tuple[int, dict[str, Any]]:
        view = await create_voice(services, principal.account_id, form)
        return 201, voice_out(view).model_dump(mode="json")

    return await run_once(
        services, principal.account_id, idempotency_key, form.fingerprint(request.url.path), make
    )


@router.get("/voices", response_model=VoiceList, responses=error_responses())
async def list_voices(
    principal: CurrentAccount,
    services: ServicesDep,
    provider: Annotated[
        str | None, Query(max_length=40, description="custom, piper, kokoro, espeak…")
    ] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> VoiceList:
    """The account's voices and public ones, then the built-in voices."""
    page = await services.voices.page(
        principal.account_id, provider=provider, search=search, limit=limit, offset=offset
    )
    return VoiceList(
        total=page.total,
        page=offset // limit + 1,
        pageSize=limit,
        totalPages=math.ceil(page.total / limit),
        items=[voice_out(view) for view in page.items],
    )


@router.get("/voices/{voice_id}", response_model=VoiceOut, responses=error_responses(404))
async def get_voice(voice_id: str, principal: CurrentAccount, services: ServicesDep) -> VoiceOut:
    """One voice, if the account may see it."""
    return voice_out(await services.voices.get(principal.account_id, voice_id))


@router.delete("/voices/{voice_id}", status_code=204, responses=error_responses(404))
async def delete_voice(voice_id: str, principal: CurrentAccount, services: ServicesDep) -> Response:
    """Delete one of the account's voices with its reference audio and profile."""
    await services.voices.delete(principal.account_id, voice_id)
    return Response(status_code=204)
