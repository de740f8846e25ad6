"""Legacy voice model paths: ``create-model``, ``list-models``, ``delete-model``."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from openfish.api.bodies import WholeNumber, body_schema, read_model
from openfish.api.deps import CurrentAccount, ServicesDep
from openfish.api.envelopes import error_responses
from openfish.api.idempotent import IdempotencyKey, run_once
from openfish.api.voices import LANGUAGE_PATTERN, Visibility, VoiceForm, create_voice
from openfish.services.voices.catalog import VoiceView

router = APIRouter(prefix="/api/open", tags=["legacy"])


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


@router.post(
    "/create-model", response_model=CreatedModel, responses=error_responses(409, 415, 422, legacy=True)
)
async def create_model(
    request: Request,
    principal: CurrentAccount,
    services: ServicesDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    audio_files: Annotated[list[UploadFile], File(alias="audioFiles")],
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[Visibility, Form()] = "private",
    language: Annotated[str, Form(pattern=LANGUAGE_PATTERN)] = "en",
    transcripts: Annotated[list[str] | None, Form(description="Optional transcript per file.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Make a voice model from reference audio (legacy shape); it is usable once processed."""
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
        created = CreatedModel(
            modelId=view.id,
            title=view.name,
            description=view.description,
            createdAt=view.record.created_at if view.record else None,
            message="Model created; it is processing and can be used once ready.",
        )
        return 200, created.model_dump(mode="json")

    return await run_once(
        services, principal.account_id, idempotency_key, form.fingerprint(request.url.path), make
    )


@router.post(
    "/list-models",
    response_model=ModelList,
    responses=error_responses(415, legacy=True),
    openapi_extra=body_schema(ListModelsBody),
)
async def list_models(request: Request, principal: CurrentAccount, services: ServicesDep) -> ModelList:
    """Voice models the account may use, paged (legacy shape)."""
    body = await read_model(request, ListModelsBody)
    personal_only = body.modelType == "personal"
    page = await services.voices.page(
        principal.account_id,
        provider=None,
        search=None,
        limit=body.pageSize,
        offset=(body.page - 1) * body.pageSize,
        personal_only=personal_only,
    )
    items = [_legacy(view) for view in page.items]
    if not body.includePersonal or body.modelType == "public":
        items = [item for item in items if not item.isPersonal]
    return ModelList(
        items=items,
        total=page.total,
        page=body.page,
        pageSize=body.pageSize,
        totalPages=math.ceil(page.total / body.pageSize),
    )


@router.post(
    "/delete-model",
    response_model=Deleted,
    responses=error_responses(404, 415, legacy=True),
    openapi_extra=body_schema(DeleteModelBody),
)
async def delete_model(request: Request, principal: CurrentAccount, services: ServicesDep) -> Deleted:
    """Delete one of the account's voice models (legacy shape)."""
    body = await read_model(request, DeleteModelBody)
    await services.voices.delete(principal.account_id, body.modelId)
    return Deleted(success=True, message=f"Model {body.modelId} deleted.")
