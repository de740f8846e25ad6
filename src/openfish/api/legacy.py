"""Legacy Open API paths (``/api/open/...``), answering in the legacy error envelope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import Field

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import CurrentAccount, ServicesDep
from openfish.api.envelopes import error_responses
from openfish.api.tts import AUDIO_RESPONSE, TtsBody, synthesize_response

router = APIRouter(prefix="/api/open", tags=["legacy"])


class LegacyTtsBody(TtsBody):
    """The legacy TTS request: the voice must be given as ``reference_id``."""

    reference_id: str = Field(min_length=1, max_length=200, description="The voice model id.")


@router.post(
    "/tts",
    response_class=StreamingResponse,
    responses={**AUDIO_RESPONSE, **error_responses(404, 415, 503, legacy=True)},
    openapi_extra=body_schema(LegacyTtsBody),
)
async def legacy_tts(request: Request, principal: CurrentAccount, services: ServicesDep) -> Response:
    """Synthesize speech (legacy path); insufficient credits answer 429 here."""
    body = await read_model(request, LegacyTtsBody)
    return await synthesize_response(body, principal.account_id, services, request)
