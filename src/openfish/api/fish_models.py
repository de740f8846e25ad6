"""The official Fish Audio API's voice models at the server root: ``/model`` (list, create) and
``/model/{id}`` (get, patch, delete), plus ``/model/{id}/cover``, in the shapes the
``fish-audio-sdk`` clients read (``docs/clients.md``).

A Fish model is one of our voices (``services/voices``): made from uploaded audio, analysed by the
voice job, usable as ``reference_id``; built-in voices are listed too. Isolation is the voices'
own: another account's private model is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from openfish.api.deps import CurrentAccount, SettingsDep, VoicesDep
from openfish.api.envelopes import FishErrorBody, error_responses
from openfish.api.fish_tts import FISH_TAG
from openfish.api.voice_forms import (
    LANGUAGE_PATTERN,
    Visibility,
    VoiceForm,
    VoiceMakerDep,
    check_texts,
    numbered,
)
from openfish.errors import InvalidRequest
from openfish.paths import FISH_MODELS, client_url
from openfish.services.voices.catalog import VoiceFilters, VoiceView
from openfish.services.voices.labels import Cover, check_cover, check_tags
from openfish.services.voices.uploads import Upload

router = APIRouter(prefix=FISH_MODELS, tags=[FISH_TAG])

#: Our voice states as Fish model states.
STATES = {"processing": "training", "ready": "trained", "failed": "failed"}
#: The author of built-in voices, and of other accounts' public voices (whose owner is not shown).
BUILTIN_AUTHOR = "openfish"
ANONYMOUS_AUTHOR = "anonymous"
#: Built-in voices were not made at any moment: they carry the Unix epoch.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UPDATE_FIELDS = frozenset({"title", "description", "visibility", "tags", "cover_image"})
#: Every field model creation takes (the SDKs send them all); ``language`` is ours.
CREATE_FIELDS = frozenset(
    {
        "title",
        "description",
        "visibility",
        "type",
        "train_mode",
        "texts",
        "tags",
        "enhance_audio_quality",
        "voices",
        "cover_image",
        "language",
    }
)


class FishAuthor(BaseModel):
    """Who made a model: the caller (its account id), ``openfish`` (built-in) or ``anonymous``."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    nickname: str
    avatar: str = ""


class FishModel(BaseModel):
    """A voice as a Fish Audio model."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id", description="Use it as reference_id.")
    type: Literal["tts"] = "tts"
    title: str
    description: str
    cover_image: str = Field(description="URL of the cover image (GET, with the token), or empty.")
    train_mode: Literal["fast"] = "fast"
    state: Literal["created", "training", "trained", "failed"] = Field(
        description="training while the voice is analysed, then trained (usable) or failed."
    )
    tags: list[str]
    samples: list[dict[str, str]] = Field(default_factory=list, description="Always empty.")
    created_at: datetime
    updated_at: datetime
    languages: list[str]
    visibility: str = Field(description="private, unlist or public (built-in voices).")
    lock_visibility: bool = Field(description="True for built-in voices, which cannot be changed.")
    like_count: int = 0
    mark_count: int = 0
    shared_count: int = 0
    task_count: int = 0
    liked: bool = False
    marked: bool = False
    author: FishAuthor


class FishModelPage(BaseModel):
    """One page of models."""

    total: int
    items: list[FishModel]


def fish_model(request: Request, public_url: str | None, view: VoiceView, account_id: str) -> FishModel:
    """The Fish shape of a voice as ``account_id`` sees it."""
    record = view.record
    cover = ""
    if record is not None and record.cover_type is not None:
        cover = str(client_url(request, public_url, "fish_model_cover", model_id=view.id))
    if record is None:
        author = FishAuthor(id=BUILTIN_AUTHOR, nickname=view.provider)
    elif view.is_personal:
        author = FishAuthor(id=account_id, nickname="")
    else:
        author = FishAuthor(id=ANONYMOUS_AUTHOR, nickname="")
    return FishModel(
        id=view.id,
        title=view.name,
        description=view.description,
        cover_image=cover,
        state=STATES.get(view.status, "trained"),
        tags=list(record.tags) if record else [],
        created_at=record.created_at if record else _EPOCH,
        updated_at=record.updated_at if record else _EPOCH,
        languages=[view.language],
        visibility=view.visibility,
        lock_visibility=record is None,
        author=author,
    )


@router.get("", response_model=FishModelPage, responses=error_responses(envelope=FishErrorBody))
async def list_models(
    request: Request,
    principal: CurrentAccount,
    voices: VoicesDep,
    settings: SettingsDep,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    page_number: Annotated[int, Query(ge=1, le=100_000)] = 1,
    title: Annotated[str | None, Query(max_length=200, description="A piece of the title.")] = None,
    tag: Annotated[list[str] | None, Query(description="Models with every one of these tags.")] = None,
    self_only: Annotated[bool, Query(alias="self", description="Only the account's own models.")] = False,
    author_id: Annotated[str | None, Query(max_length=200, description="The caller's own id only.")] = None,
    language: Annotated[list[str] | None, Query(description="Models speaking any of these.")] = None,
    title_language: Annotated[list[str] | None, Query(description="Accepted; changes nothing.")] = None,
    sort_by: Annotated[Literal["task_count", "created_at"], Query(description="Newest first either way.")] = (
        "task_count"
    ),
) -> FishModelPage:
    """The account's models and other accounts' public ones (newest first), then built-in voices."""
    del title_language, sort_by  # nothing to sort by but age; no title languages are known
    account_id = principal.account_id
    try:
        tags = check_tags(tag or [], "tag")
    except InvalidRequest:
        tags = None  # no model can carry such a tag
    if tags is None or (author_id is not None and author_id != account_id):
        return FishModelPage(total=0, items=[])
    page = await voices.page(
        account_id,
        provider=None,
        search=None,
        limit=page_size,
        offset=(page_number - 1) * page_size,
        personal_only=self_only or author_id is not None,
        filters=VoiceFilters(name=title, tags=tags, languages=language or []),
    )
    items = [fish_model(request, settings.public_url, view, account_id) for view in page.items]
    return FishModelPage(total=page.total, items=items)


@router.post(
    "",
    status_code=201,
    response_model=FishModel,
    responses=error_responses(402, 415, 422, envelope=FishErrorBody),
)
async def create_model(
    request: Request,
    principal: CurrentAccount,
    maker: VoiceMakerDep,
    settings: SettingsDep,
    title: Annotated[str, Form(min_length=1, max_length=200)],
    voices: Annotated[list[UploadFile], File(description="Reference recordings of one speaker.")],
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[Visibility, Form()] = "private",
    model_type: Annotated[Literal["tts"], Form(alias="type")] = "tts",
    train_mode: Annotated[Literal["fast"], Form()] = "fast",
    texts: Annotated[list[str] | None, Form(description="Transcript per recording (optional).")] = None,
    tags: Annotated[list[str] | None, Form()] = None,
    enhance_audio_quality: Annotated[bool, Form(description="Accepted; changes nothing.")] = True,
    language: Annotated[str, Form(pattern=LANGUAGE_PATTERN, description="Ours; default en.")] = "en",
    cover_image: Annotated[UploadFile | None, File(description="PNG, JPEG, GIF or WebP.")] = None,
) -> FishModel:
    """Make a model (a voice) from reference audio; it is ``training`` until analysed."""
    del model_type, train_mode, enhance_audio_quality  # one kind of model, made one way
    unknown = sorted(set((await request.form()).keys()) - CREATE_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{', '.join(unknown)}: unknown field; expected {', '.join(sorted(CREATE_FIELDS))}"
        )
    transcripts = texts or []
    if len(transcripts) > len(voices):
        raise InvalidRequest(f"texts: {len(transcripts)} given for {len(voices)} audio files")
    check_texts(("title", title), [("description", description), *numbered("texts", transcripts)])
    form = VoiceForm(
        name=title,
        description=description,
        visibility=visibility,
        language=language,
        uploads=[Upload(filename=file.filename or "", data=await file.read()) for file in voices],
        transcripts=transcripts,
        tags=check_tags(tags or []),
        cover=await _cover(cover_image),
        files_field="voices",
    )
    view = await maker.make(principal.account_id, form)
    return fish_model(request, settings.public_url, view, principal.account_id)


@router.get("/{model_id}", response_model=FishModel, responses=error_responses(404, envelope=FishErrorBody))
async def get_model(
    request: Request, model_id: str, principal: CurrentAccount, voices: VoicesDep, settings: SettingsDep
) -> FishModel:
    """One model the account may see."""
    view = await voices.get(principal.account_id, model_id)
    return fish_model(request, settings.public_url, view, principal.account_id)


@router.patch(
    "/{model_id}", response_model=FishModel, responses=error_responses(404, 415, envelope=FishErrorBody)
)
async def update_model(
    request: Request,
    model_id: str,
    principal: CurrentAccount,
    voices: VoicesDep,
    settings: SettingsDep,
    title: Annotated[str | None, Form(min_length=1, max_length=200)] = None,
    description: Annotated[str | None, Form(max_length=2000)] = None,
    visibility: Annotated[Visibility | None, Form()] = None,
    tags: Annotated[list[str] | None, Form()] = None,
    cover_image: Annotated[UploadFile | None, File(description="PNG, JPEG, GIF or WebP.")] = None,
) -> FishModel:
    """Change the title, description, visibility, tags or cover of one of the account's models."""
    await voices.get_own(principal.account_id, model_id)  # 404 for any other, whatever was sent
    sent = set((await request.form()).keys())
    unknown = sorted(sent - UPDATE_FIELDS)
    if unknown:
        raise InvalidRequest(f"{', '.join(unknown)}: unknown field")
    if description is None and "description" in sent:
        description = ""  # sent empty (the form layer reads an empty field as absent): clear it
    check_texts(("title", title) if title is not None else None, [("description", description or "")])
    view = await voices.update(
        principal.account_id,
        model_id,
        name=title,
        description=description,
        visibility=visibility,
        tags=check_tags(tags) if tags is not None else None,
        cover=await _cover(cover_image),
    )
    return fish_model(request, settings.public_url, view, principal.account_id)


@router.delete("/{model_id}", status_code=204, responses=error_responses(404, envelope=FishErrorBody))
async def delete_model(model_id: str, principal: CurrentAccount, voices: VoicesDep) -> Response:
    """Delete one of the account's models with its audio, profile and cover."""
    await voices.delete(principal.account_id, model_id)
    return Response(status_code=204)


@router.get(
    "/{model_id}/cover",
    name="fish_model_cover",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/gif": {}, "image/webp": {}}},
        **error_responses(404, envelope=FishErrorBody),
    },
)
async def model_cover(model_id: str, principal: CurrentAccount, voices: VoicesDep) -> Response:
    """The cover image of a model the account may see."""
    cover = await voices.cover(principal.account_id, model_id)
    return Response(
        cover.data, media_type=cover.content_type, headers={"Cache-Control": "private, max-age=300"}
    )


async def _cover(upload: UploadFile | None) -> Cover | None:
    return None if upload is None else check_cover(await upload.read())
