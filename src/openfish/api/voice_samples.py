"""A made voice's reference recordings behind expiring signed URLs:
``GET /api/open/v1/voices/{id}/samples/{index}?expires=&sig=`` (part of the voices surface; its
router is included in ``api/voices.py``'s).

The signature is the credential (no bearer token), so a player or a browser can fetch the URL; only
the voice's owner is handed these URLs (the Fish Audio API's model ``samples``, ``api/fish_models.py``).
Range requests are served, and an object store's own time-limited URL is a redirect
(``api/downloads.py``).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from openfish.api.deps import BlobsDep, PoolDep, SettingsDep, SignerDep
from openfish.api.downloads import blob_response, download_responses
from openfish.config import Settings
from openfish.errors import ErrorBody, NotFound
from openfish.paths import client_url
from openfish.services.runtime.signing import UrlSigner
from openfish.services.voices.analysis import reference_key

router = APIRouter(tags=["voices"])

_VOICE_ID = re.compile(r"voice_[0-9a-f]{32}")


def sample_url(request: Request, settings: Settings, signer: UrlSigner, voice_id: str, index: int) -> str:
    """A signed URL of a made voice's ``index``-th reference recording, valid as long as stored
    audio's (``OPENFISH_TTS__STORED_URL_TTL_SECONDS``), under the public URL when one is set."""
    expires, signature = signer.sign(_sample_name(voice_id, index), settings.tts.stored_url_ttl_seconds)
    url = client_url(request, settings.public_url, "voice_sample", voice_id=voice_id, index=str(index))
    return str(url.include_query_params(expires=expires, sig=signature))


def _sample_name(voice_id: str, index: int) -> str:
    # What is signed: unlike any name of another signed path, so no signature serves elsewhere.
    return f"voice-sample/{voice_id}/{index}"


@router.get(
    "/voices/{voice_id}/samples/{index}",
    name="voice_sample",
    response_class=StreamingResponse,
    responses=download_responses(
        "The recording, 16-bit WAV",
        ["audio/wav"],
        "No such recording (or the voice was deleted).",
        {400: {"model": ErrorBody, "description": "The index is not a whole number from 0 to 99."}},
    ),
)
async def voice_sample(
    request: Request,
    voice_id: str,
    index: Annotated[int, Path(ge=0, le=99)],
    signer: SignerDep,
    blobs: BlobsDep,
    pool: PoolDep,
    settings: SettingsDep,
    expires: Annotated[str | None, Query(description="Expiry, Unix seconds.")] = None,
    sig: Annotated[str | None, Query(description="The URL's signature.")] = None,
) -> Response:
    """One reference recording of a made voice, as stored (22,050 Hz mono WAV), while its signed
    URL is valid. Only the voice's owner is given these URLs (``/model`` samples)."""
    if not _VOICE_ID.fullmatch(voice_id):
        raise NotFound("No such recording.")
    signer.verify(_sample_name(voice_id, index), expires, sig)
    return await blob_response(
        request,
        blobs,
        pool,
        reference_key(voice_id, index),
        media_type="audio/wav",
        ttl_seconds=settings.tts.stored_url_ttl_seconds,
        headers={"Cache-Control": "private, max-age=300"},
        missing="No such recording.",
    )
