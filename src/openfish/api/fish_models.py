"""The official Fish Audio API's voice models at the server root: ``/model`` (list, create) and
``/model/{id}`` (get, patch, delete), plus ``/model/{id}/cover``, in the shapes the
``fish-audio-sdk`` clients read (``docs/clients.md``).

A Fish model is one of our voices (``services/voices``): made from uploaded audio, analysed by the
voice job, usable as ``reference_id``; built-in voices are listed too. Isolation is the voices'
own: another account's private model is a 404, exactly like one that does not exist. Its
``samples`` are its reference recordings (signed URLs, ``api/voice_samples.py``), for its owner
only; ``task_count`` counts the charged requests that named it (``services/voices/tasks.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from openfish.api.deps import CurrentAccount, SettingsDep, SignerDep, VoicesDep
from openfish.api.envelopes import FishErrorBody, error_responses
from openfish.api.fish_model_shapes import FishModel, FishModelPage, fish_model
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
from openfish.paths import FISH_MODELS
from openfish.services.voices.labels import Cover, check_cover, check_tags
from openfish.services.voices.queries import VoiceFilters, VoiceScope, VoiceSort
from openfish.services.voices.uploads import Upload

router = APIRouter(prefix=FISH_MODELS, tags=[FISH_TAG])

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


@router.get("", response_model=FishModelPage, responses=error_responses(envelope=FishErrorBody))
async def list_models(
    request: Request,
    principal: CurrentAccount,
    voices: VoicesDep,
    settings: SettingsDep,
    signer: SignerDep,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    page_number: Annotated[int, Query(ge=1, le=100_000)] = 1,
    title: Annotated[str | None, Query(max_length=200, description="A piece of the title.")] = None,
    tag: Annotated[list[str] | None, Query(description="Models with every one of these tags.")] = None,
    self_only: Annotated[bool, Query(alias="self", description="Only the account's own models.")] = False,
    author_id: Annotated[
        str | None, Query(max_length=200, description="Only this account's models (others': public ones).")
    ] = None,
    language: Annotated[list[str] | None, Query(description="Models speaking any of these.")] = None,
    title_language: Annotated[list[str] | None, Query(description="Accepted; changes nothing.")] = None,
    sort_by: Annotated[
        VoiceSort,
        Query(description="task_count: most used first; score: used by the most accounts first; created_at."),
    ] = "task_count",
) -> FishModelPage:
    """The account's models and other accounts' public ones, and built-in voices, in one order."""
    del title_language  # no title languages are known
    account_id = principal.account_id
    try:
        tags = check_tags(tag or [], "tag")
    except InvalidRequest:
        tags = None  # no model can carry such a tag
    if tags is None:
        return FishModelPage(total=0, items=[])
    filters = VoiceFilters(name=title, tags=tags, languages=language or [], author=author_id)
    scope = VoiceScope(personal_only=self_only, filters=filters, sort=sort_by)
    page = await voices.page(account_id, scope, limit=page_size, offset=(page_number - 1) * page_size)
    items = [fish_model(request, settings, signer, view, account_id) for view in page.items]
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
    signer: SignerDep,
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
    return fish_model(request, settings, signer, view, principal.account_id)


@router.get("/{model_id}", response_model=FishModel, responses=error_responses(404, envelope=FishErrorBody))
async def get_model(
    request: Request,
    model_id: str,
    principal: CurrentAccount,
    voices: VoicesDep,
    settings: SettingsDep,
    signer: SignerDep,
) -> FishModel:
    """One model the account may see."""
    view = await voices.get(principal.account_id, model_id)
    return fish_model(request, settings, signer, view, principal.account_id)


@router.patch(
    "/{model_id}", response_model=FishModel, responses=error_responses(404, 415, envelope=FishErrorBody)
)
async def update_model(
    request: Request,
    model_id: str,
    principal: CurrentAccount,
    voices: VoicesDep,
    settings: SettingsDep,
    signer: SignerDep,
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
    return fish_model(request, settings, signer, view, principal.account_id)


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
