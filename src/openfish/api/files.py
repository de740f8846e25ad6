"""Uploads: ``/api/open/v1/files`` — media a caller stores to use as ``audioUrl`` / ``videoUrl``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile
from pydantic import BaseModel, Field

from openfish.api.deps import CurrentAccount, FilesDep, SettingsDep
from openfish.api.envelopes import error_responses
from openfish.paths import UPLOADS, client_url

router = APIRouter(prefix=UPLOADS, tags=["files"])


class FileOut(BaseModel):
    """An uploaded file and the URL to use it by."""

    id: str
    url: str = Field(description="Use as audioUrl/videoUrl; readable only by the uploading account.")
    size: int


@router.post("", status_code=201, response_model=FileOut, responses=error_responses())
async def upload(
    request: Request,
    principal: CurrentAccount,
    files: FilesDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
) -> FileOut:
    """Store a media file for later requests of this account."""
    stored = await files.put(principal.account_id, await file.read())
    url = client_url(request, settings.public_url, "download", file_id=stored.id)
    return FileOut(id=stored.id, url=str(url), size=stored.size)


@router.get(
    "/{file_id}",
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(404)},
)
async def download(file_id: str, principal: CurrentAccount, files: FilesDep) -> Response:
    """The account's own file."""
    data = await files.get(principal.account_id, file_id)
    return Response(data, media_type="application/octet-stream")


@router.delete("/{file_id}", status_code=204, responses=error_responses(404))
async def remove(file_id: str, principal: CurrentAccount, files: FilesDep) -> Response:
    """Delete the account's file."""
    await files.delete(principal.account_id, file_id)
    return Response(status_code=204)
