"""Stored audio behind expiring signed URLs: ``GET /api/open/v1/audio/{name}?expires=&sig=``.

The signature is the credential (no bearer token), so the URL can be handed to a browser or a
player. Range requests are served (seeking, resumed downloads).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from openfish.api.deps import BlobsDep, PoolDep, SettingsDep, SignerDep
from openfish.api.downloads import blob_response, download_responses
from openfish.errors import NotFound
from openfish.paths import STORED_AUDIO
from openfish.services.tts.synthesis import stored_audio_key

router = APIRouter(prefix=STORED_AUDIO, tags=["tts"])

# Stored TTS audio is named by content hash; job audio by job id.
_NAME = re.compile(r"^(?:[0-9a-f]{64}|job_[0-9a-f]{32})_(\d{4,6})\.(mp3|wav|pcm|opus|aac|flac)$")
_MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}
_RESPONSES = download_responses("The audio", _MEDIA_TYPES.values(), "No such audio.")


@router.get("/{name}", response_class=StreamingResponse, responses=_RESPONSES)
async def stored_audio(
    name: str,
    request: Request,
    signer: SignerDep,
    blobs: BlobsDep,
    pool: PoolDep,
    settings: SettingsDep,
    expires: Annotated[str | None, Query(description="Expiry, Unix seconds.")] = None,
    sig: Annotated[str | None, Query(description="The URL's signature.")] = None,
) -> Response:
    """The audio a ``cache=true`` TTS request or a TTS job stored, while its URL is valid."""
    match = _NAME.match(name)
    if match is None:
        raise NotFound("No such audio.")
    signer.verify(name, expires, sig)
    rate, fmt = match.groups()
    media_type = f"audio/pcm;rate={rate};encoding=s16le;channels=1" if fmt == "pcm" else _MEDIA_TYPES[fmt]
    return await blob_response(
        request,
        blobs,
        pool,
        stored_audio_key(name),
        media_type=media_type,
        ttl_seconds=settings.tts.stored_url_ttl_seconds,
        headers={"Cache-Control": "private, max-age=300"},
        missing="No such audio.",
    )
