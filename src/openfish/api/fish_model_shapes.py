"""The Fish Audio API's voice model shapes (``/model``, ``api/fish_models.py``), and one of our voices
in them, as the ``fish-audio-sdk`` clients read them (``Voice`` / ``ModelEntity``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from openfish.api.voice_samples import sample_url
from openfish.config import Settings
from openfish.paths import client_url
from openfish.services.runtime.signing import UrlSigner
from openfish.services.voices.views import VoiceView

#: Our voice states as Fish model states.
STATES = {"processing": "training", "ready": "trained", "failed": "failed"}
#: The author of built-in voices, and of other accounts' public voices (whose owner is not shown).
BUILTIN_AUTHOR = "openfish"
ANONYMOUS_AUTHOR = "anonymous"
#: Built-in voices were not made at any moment: they carry the Unix epoch.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FishAuthor(BaseModel):
    """Who made a model: the caller (its account id), ``openfish`` (built-in) or ``anonymous``."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    nickname: str
    avatar: str = ""


class FishSample(BaseModel):
    """One of a model's reference recordings."""

    title: str
    text: str = Field(description="Its transcript, as given at creation, or empty.")
    task_id: str = Field(default="", description="Empty: a recording, not a synthesis task.")
    audio: str = Field(description="Signed URL of the WAV recording (no token needed); expires.")


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
    samples: list[FishSample] = Field(
        description="The reference recordings, for the model's owner; empty for everyone else."
    )
    created_at: datetime
    updated_at: datetime
    languages: list[str]
    visibility: str = Field(description="private, unlist or public (built-in voices).")
    lock_visibility: bool = Field(description="True for built-in voices, which cannot be changed.")
    like_count: int = Field(default=0, description="Always 0: there are no likes here.")
    mark_count: int = Field(default=0, description="Always 0: there are no bookmarks here.")
    shared_count: int = Field(default=0, description="Always 0: shares are not counted.")
    task_count: int = Field(description="Charged synthesis requests (every account's) that named it.")
    liked: bool = False
    marked: bool = False
    author: FishAuthor


class FishModelPage(BaseModel):
    """One page of models."""

    total: int
    items: list[FishModel]


def fish_model(
    request: Request, settings: Settings, signer: UrlSigner, view: VoiceView, account_id: str
) -> FishModel:
    """The Fish shape of a voice as ``account_id`` sees it."""
    record = view.record
    cover = ""
    if record is not None and record.cover_type is not None:
        cover = str(client_url(request, settings.public_url, "fish_model_cover", model_id=view.id))
    samples = []
    if record is not None and view.is_personal:
        texts = record.transcripts
        samples = [
            FishSample(
                title=f"Recording {index + 1}",
                text=texts[index] if index < len(texts) else "",
                audio=sample_url(request, settings, signer, view.id, index),
            )
            for index in range(record.reference_count)
        ]
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
        samples=samples,
        created_at=record.created_at if record else _EPOCH,
        updated_at=record.updated_at if record else _EPOCH,
        languages=[view.language],
        visibility=view.visibility,
        lock_visibility=record is None,
        task_count=view.usage.tasks,
        author=author,
    )
