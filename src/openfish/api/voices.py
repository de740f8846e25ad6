"""Voices: ``/api/open/v1/voices`` (create from reference audio, list, get, delete; a made voice's
recordings are ``api/voice_samples.py``'s) and the legacy voice model paths
``/api/open/{create,list,delete}-model``."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from openfish.api import voice_samples
from openfish.api.bodies import WholeNumber, body_schema, read_model
from openfish.api.deps import CurrentAccount, IdempotencyDep, VoicesDep
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.api.voice_forms import VoiceFormDep, VoiceMakerDep
from openfish.paths import LEGACY, V1
from openfish.services.voices.queries import VoiceScope
from openfish.services.voices.views import VoiceView

router = APIRouter(prefix=V1, tags=["voices"])
router.include_router(voice_samples.router)  # part of the voices surface: on and off with it
legacy_router = APIRouter(prefix=LEGACY, tags=["legacy"])


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


@router.post(
    "/voices", status_code=201, response_model=VoiceOut, responses=error_responses(402, 409, 415, 422)
)
async def create(
    request: Request,
    principal: CurrentAccount,
    form: VoiceFormDep,
    maker: VoiceMakerDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Make a voice from reference audio; it is ``processing`` until its analysis is done."""

    async def make() -> tuple[int, dict[str, Any]]:
        view = await maker.make(principal.account_id, form)
        return 201, voice_out(view).model_dump(mode="json")

    return await run_once(
        idempotency, principal.account_id, idempotency_key, form.fingerprint(request.url.path), make
    )


@router.get("/voices", response_model=VoiceList, responses=error_responses())
async def list_voices(
    principal: CurrentAccount,
    voices: VoicesDep,
    provider: Annotated[
        str | None, Query(max_length=40, description="custom, piper, kokoro, espeak…")
    ] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    owner: Annotated[
        Literal["me"] | None,
        Query(description="`me`: only the voices this account made (any status and visibility)."),
    ] = None,
) -> VoiceList:
    """The account's voices and public ones, then the built-in voices."""
    scope = VoiceScope(provider=provider, search=search, personal_only=owner == "me")
    page = await voices.page(principal.account_id, scope, limit=limit, offset=offset)
    return VoiceList(
        total=page.total,
        page=offset // limit + 1,
        pageSize=limit,
        totalPages=math.ceil(page.total / limit),
        items=[voice_out(view) for view in page.items],
    )


@router.get("/voices/{voice_id}", response_model=VoiceOut, responses=error_responses(404))
async def get_voice(voice_id: str, principal: CurrentAccount, voices: VoicesDep) -> VoiceOut:
    """One voice, if the account may see it."""
    return voice_out(await voices.get(principal.account_id, voice_id))


@router.delete("/voices/{voice_id}", status_code=204, responses=error_responses(404))
async def delete_voice(voice_id: str, principal: CurrentAccount, voices: VoicesDep) -> Response:
    """Delete one of the account's voices with its reference audio and profile."""
    await voices.delete(principal.account_id, voice_id)
    return Response(status_code=204)


class CreatedModel(BaseModel):
    """The legacy answer to ``create-model``."""

    modelId: str
    title: str
    description: str
    createdAt: datetime | None
    message: str


class ListModelsBody(BaseModel):
    """The legacy ``list-models`` query."""

    model_config = ConfigDict(extra="forbid")

    modelType: Literal["personal", "public", "all"] | None = Field(
        default=None, description="`personal` or `public` narrows the list; `all` or none lists all."
    )
    includePersonal: StrictBool = True
    page: WholeNumber = Field(default=1, ge=1, le=100_000)
    pageSize: WholeNumber = Field(default=20, ge=1, le=100)


class LegacyModel(BaseModel):
    """A voice model in the legacy shape."""

    modelId: str
    title: str
    description: str
    created_at: datetime | None
    updated_at: datetime | None
    isPersonal: bool
    status: str


class ModelList(BaseModel):
    """A page of legacy voice models."""

    items: list[LegacyModel]
    total: int
    page: int
    pageSize: int
    totalPages: int


class DeleteModelBody(BaseModel):
    """The legacy ``delete-model`` request."""

    model_config = ConfigDict(extra="forbid")

    modelId: str = Field(min_length=1, max_length=200)


class Deleted(BaseModel):
    """The legacy answer to ``delete-model``."""

    success: bool
    message: str


def _legacy(view: VoiceView) -> LegacyModel:
    record = view.record
    return LegacyModel(
        modelId=view.id,
        title=view.name,
        description=view.description,
        created_at=record.created_at if record else None,
        updated_at=record.updated_at if record else None,
        isPersonal=view.is_personal,
        status=view.status,
    )


@legacy_router.post(
    "/create-model", response_model=CreatedModel, responses=error_responses(409, 415, 422, legacy=True)
)
async def create_model(
    request: Request,
    principal: CurrentAccount,
    form: VoiceFormDep,
    maker: VoiceMakerDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Make a voice model from reference audio (legacy shape); it is usable once processed."""

    async def make() -> tuple[int, dict[str, Any]]:
        view = await maker.make(principal.account_id, form)
        created = CreatedModel(
            modelId=view.id,
            title=view.name,
            description=view.description,
            createdAt=view.record.created_at if view.record else None,
            message="Model created; it is processing and can be used once ready.",
        )
        return 200, created.model_dump(mode="json")

    return await run_once(
        idempotency, principal.account_id, idempotency_key, form.fingerprint(request.url.path), make
    )


@legacy_router.post(
    "/list-models",
    response_model=ModelList,
    responses=error_responses(415, legacy=True),
    openapi_extra=body_schema(ListModelsBody),
)
async def list_models(request: Request, principal: CurrentAccount, voices: VoicesDep) -> ModelList:
    """Voice models the account may use, paged (legacy shape)."""
    body = await read_model(request, ListModelsBody)
    scope = VoiceScope(
        personal_only=body.modelType == "personal",
        others_only=not body.includePersonal or body.modelType == "public",
    )
    page = await voices.page(
        principal.account_id, scope, limit=body.pageSize, offset=(body.page - 1) * body.pageSize
    )
    return ModelList(
        items=[_legacy(view) for view in page.items],
        total=page.total,
        page=body.page,
        pageSize=body.pageSize,
        totalPages=math.ceil(page.total / body.pageSize),
    )


@legacy_router.post(
    "/delete-model",
    response_model=Deleted,
    responses=error_responses(404, 415, legacy=True),
    openapi_extra=body_schema(DeleteModelBody),
)
async def delete_model(request: Request, principal: CurrentAccount, voices: VoicesDep) -> Deleted:
    """Delete one of the account's voice models (legacy shape)."""
    body = await read_model(request, DeleteModelBody)
    await voices.delete(principal.account_id, body.modelId)
    return Deleted(success=True, message=f"Model {body.modelId} deleted.")
