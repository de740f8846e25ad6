"""The map of public URL paths that are built outside their own route: downloads that services
link to (job results, stored audio, uploads) and recognise again when a client hands them back as
media URLs. Routes declare their paths from these constants, so a path is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request

from openfish.services.runtime.signing import UrlSigner

#: Base path of the v1 API.
V1 = "/api/open/v1"
#: Base path of the legacy Open API (every ``/api/open/...`` path outside :data:`V1`); each surface
#: module puts its legacy paths on its ``legacy_router`` under this prefix.
LEGACY = "/api/open"
#: Stored TTS audio (``cache=true`` and job results), behind signed URLs: ``{STORED_AUDIO}/<name>``.
STORED_AUDIO = f"{V1}/audio"
#: An account's uploads: ``{UPLOADS}/<file id>``.
UPLOADS = f"{V1}/files"
#: Lip-sync result videos, behind signed URLs: ``{LIPSYNC_RESULTS}/<name>``.
LIPSYNC_RESULTS = f"{V1}/media/lip-sync/results"
#: Transcription jobs: ``{TRANSCRIPTION_JOBS}/<job id>``.
TRANSCRIPTION_JOBS = f"{V1}/speech/transcriptions/jobs"
#: A transcription job's transcript (JSON) and captions (SRT, VTT), behind signed URLs:
#: ``{TRANSCRIPTION_RESULTS}/<name>``.
TRANSCRIPTION_RESULTS = f"{V1}/speech/transcriptions/results"
#: The official Fish Audio API, at the server root (``api/fish_*.py``): TTS (and its socket under
#: it), ASR, voice models, the wallet. These paths and those under them answer Fish's envelope.
FISH_TTS = "/v1/tts"
FISH_ASR = "/v1/asr"
FISH_MODELS = "/model"
FISH_WALLET = "/wallet/self"
FISH_PATHS = (FISH_TTS, FISH_ASR, FISH_MODELS, FISH_WALLET)


@dataclass(frozen=True)
class SignedLinks:
    """Absolute signed links to downloads, for results made outside a request (jobs, webhooks)."""

    base_url: str
    signer: UrlSigner

    def stored_audio(self, name: str, ttl_seconds: int) -> tuple[str, int]:
        """The link to stored audio ``name`` and when it expires (Unix seconds)."""
        return self._signed(STORED_AUDIO, name, ttl_seconds)

    def lipsync_result(self, name: str, ttl_seconds: int) -> tuple[str, int]:
        """The link to lip-sync video ``name`` and when it expires (Unix seconds)."""
        return self._signed(LIPSYNC_RESULTS, name, ttl_seconds)

    def transcription_result(self, name: str, ttl_seconds: int) -> tuple[str, int]:
        """The link to a transcription job's result ``name`` (``.json``, ``.srt``, ``.vtt``) and
        when it expires (Unix seconds)."""
        return self._signed(TRANSCRIPTION_RESULTS, name, ttl_seconds)

    def _signed(self, path: str, name: str, ttl_seconds: int) -> tuple[str, int]:
        expires, signature = self.signer.sign(name, ttl_seconds)
        return f"{self.base_url}{path}/{name}?expires={expires}&sig={signature}", expires


def client_url(request: Request, public_url: str | None, route: str, **path_params: Any) -> URL:
    """The absolute URL of ``route`` to hand a client: under ``public_url`` when one is configured
    (the address clients reach every node at, so that any node recognises it again as a media URL),
    else as the request reached this server."""
    url = request.url_for(route, **path_params)
    return URL(public_url.rstrip("/") + url.path) if public_url else url
