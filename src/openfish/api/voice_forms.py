"""Voice creation's multipart form (shared by ``POST /api/open/v1/voices`` and the legacy
``POST /api/open/create-model``): reading and checking it (``VoiceFormDep``), and making the voice
it asks for (``VoiceMakerDep``)."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, File, Form, Request, UploadFile

from openfish.api.deps import PoolDep, SettingsDep, VoicesDep
from openfish.config import VoiceSettings
from openfish.errors import InvalidRequest
from openfish.services.accounts.idempotency import request_fingerprint
from openfish.services.runtime.workers import WorkerPool
from openfish.services.voices.catalog import VoiceService
from openfish.services.voices.labels import Cover
from openfish.services.voices.uploads import Upload, check_uploads
from openfish.services.voices.views import VoiceView

Visibility = Literal["private", "unlist", "public"]


@dataclass(frozen=True)
class VoiceForm:
    """A voice creation request, parsed (shared by the v1 and legacy paths)."""

    name: str
    description: str
    visibility: str
    language: str
    uploads: list[Upload]
    transcripts: list[str]
    #: Checked tags and cover image (the Fish Audio API's model fields; v1 has neither).
    tags: list[str] = field(default_factory=list)
    cover: Cover | None = None
    #: The form field the audio came in, for error messages.
    files_field: str = "audioFiles"

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
        check_texts(("name", name), [("description", description), *numbered("transcripts", transcripts)])
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


def numbered(name: str, texts: list[str]) -> list[tuple[str, str]]:
    """Each text labelled with its field's ``name`` and index (``transcripts[0]``), for errors."""
    return [(f"{name}[{index}]", text) for index, text in enumerate(texts)]


def check_texts(name: tuple[str, str] | None, texts: list[tuple[str, str]]) -> None:
    """400 for control characters (other than line breaks and tabs) in any labelled text, or a
    ``(label, name)`` that is not one line of visible text."""
    for label, text in [*([name] if name else []), *texts]:
        if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in text):
            raise InvalidRequest(f"{label}: must not contain control characters")
    if name is not None:
        label, value = name
        if "\n" in value or "\t" in value or not value.strip():
            raise InvalidRequest(f"{label}: must be one line of visible text")


@dataclass(frozen=True)
class VoiceMaker:
    """Makes the voice a form asks for (v1 and legacy routes alike)."""

    voices: VoiceService
    pool: WorkerPool
    rules: VoiceSettings

    async def make(self, account_id: str, form: VoiceForm) -> VoiceView:
        """Check the uploads (in the pool: decoding blocks), store the voice and queue its analysis."""
        references = await self.pool.submit(lambda: check_uploads(form.uploads, self.rules, form.files_field))
        voice = await self.voices.create(
            account_id,
            name=form.name,
            description=form.description,
            visibility=form.visibility,
            language=form.language,
            references=references,
            transcripts=form.transcripts,
            tags=form.tags,
            cover=form.cover,
        )
        return await self.voices.get(account_id, voice.id)


async def _voice_form(
    request: Request,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    audio_files: Annotated[
        list[UploadFile], File(alias="audioFiles", description="1-20 reference recordings of one speaker.")
    ],
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[Visibility, Form()] = "private",
    language: Annotated[str, Form(pattern=LANGUAGE_PATTERN)] = "en",
    transcripts: Annotated[list[str] | None, Form(description="Optional transcript per file.")] = None,
) -> VoiceForm:
    return await VoiceForm.read(
        request,
        name=name,
        description=description,
        visibility=visibility,
        language=language,
        files=audio_files,
        transcripts=transcripts or [],
    )


async def _voice_maker(voices: VoicesDep, pool: PoolDep, settings: SettingsDep) -> VoiceMaker:
    return VoiceMaker(voices, pool, settings.voices)


#: The voice creation form, read and checked; its fields are the operation's multipart body.
VoiceFormDep = Annotated[VoiceForm, Depends(_voice_form)]
#: What makes the voice (the catalog, the pool for decoding, the voice rules).
VoiceMakerDep = Annotated[VoiceMaker, Depends(_voice_maker)]
