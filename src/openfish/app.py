"""The application factory. Nothing is built at import time; ``create_app`` builds everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from openfish import __version__
from openfish.api import (
    audio,
    fish_asr,
    fish_live,
    fish_models,
    fish_tts,
    fish_wallet,
    health,
    openai_compat,
    openai_transcriptions,
    profile,
    realtime_asr,
    realtime_tts,
    transcriptions,
    tts,
    usage,
)
from openfish.api import files as files_api
from openfish.api import lipsync as lipsync_api
from openfish.api import transcription_jobs as transcription_jobs_api
from openfish.api import tts_jobs as tts_jobs_api
from openfish.api import voices as voices_api
from openfish.api.handlers import install_error_handlers
from openfish.api.legacy import deprecations, document_deprecations, is_legacy_router
from openfish.api.schema import install_openapi
from openfish.api.schema_rules import enforced_rules
from openfish.config import Settings
from openfish.container import build_services
from openfish.engines.registry import EngineRegistry
from openfish.middleware import RequestContextMiddleware
from openfish.paths import FISH_ASR, FISH_MODELS, FISH_TTS


def _surface_routers(settings: Settings, engines: EngineRegistry) -> list[APIRouter]:
    """Routers of the surfaces switched on in ``settings.surfaces`` whose engines are here.

    A module serving legacy paths too lists its ``legacy_router`` right after its ``router``; the
    legacy routers are left out altogether when ``settings.surfaces.legacy`` is off.
    """
    available = {
        "profile": [profile.router],
        "usage": [usage.router],
        "tts": [tts.router, tts.legacy_router, tts_jobs_api.router, audio.router],
        "voices": [voices_api.router, voices_api.legacy_router],
        "asr": [transcriptions.router, transcription_jobs_api.router],
        "files": [files_api.router],
    }
    if engines.lipsync(settings.lipsync.engine) is not None:
        available["lipsync"] = [lipsync_api.router, lipsync_api.legacy_router]
    if settings.realtime.tts:
        available["tts"] += [realtime_tts.router, realtime_tts.legacy_router]
    if settings.realtime.asr:
        available["asr"].append(realtime_asr.router)
    enabled = settings.surfaces.model_dump()
    if enabled.get("fish_compat", False):
        # The Fish Audio API's paths, each behind the surface whose service it speaks for.
        fish = {
            "tts": [fish_tts.router, *([fish_live.router] if settings.realtime.tts else [])],
            "profile": [fish_wallet.router],
            "voices": [fish_models.router],
            "asr": [fish_asr.router],
        }
        available = {name: [*available.get(name, []), *fish.get(name, [])] for name in available}
    if enabled.get("openai_compat", False):
        # The OpenAI audio API under /v1: models, speech (with tts) and transcription (with asr).
        available["openai_compat"] = [openai_compat.router]
        available["tts"].append(openai_compat.speech_router)
        available["asr"].append(openai_transcriptions.router)
    return [
        router
        for name, routers in available.items()
        if enabled.get(name, False)
        for router in routers
        if settings.surfaces.legacy or not is_legacy_router(router)
    ]


def create_app(settings: Settings, engines: EngineRegistry | None = None) -> FastAPI:
    """A FastAPI app serving the surfaces enabled in ``settings``."""
    services = build_services(settings, engines)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start(worker=False)
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="openfish",
        summary="Self-hosted FishSpeech Open API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    routers = _surface_routers(settings, services.engines)
    # Every answer on a legacy path says it is deprecated and what replaces it, as the schema does.
    legacy_headers = deprecations(routers, settings.surfaces)
    enforced = enforced_rules(settings, services.engines)

    def rules(document: dict[str, Any]) -> None:
        enforced(document)
        document_deprecations(document, legacy_headers)

    # The schema lists the sockets this app serves (the legacy one goes with the legacy switch).
    served = {getattr(route, "path", None) for router in routers for route in router.routes}
    install_error_handlers(app)
    install_openapi(
        app,
        extra_models=[
            tts.TtsBody,
            tts.LegacyTtsBody,
            fish_tts.FishTtsBody,
            fish_asr.FishAsrBody,
            openai_compat.SpeechBody,
            transcriptions.TranscriptionBody,
            transcriptions.TranscriptionJobBody,
            lipsync_api.LipSyncBody,
            profile.ProfileUpdate,
            voices_api.ListModelsBody,
            voices_api.DeleteModelBody,
        ],
        websockets={
            path: doc
            for module in (realtime_tts, realtime_asr, fish_live)
            for path, doc in module.SOCKETS.items()
            if path in served
        },
        rules=rules,
    )
    upload_limit = settings.voices.max_upload_bytes
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        body_limits={
            "/api/open/v1/voices": upload_limit,
            FISH_MODELS: upload_limit,
            # Inline references travel in the TTS body: up to one voice upload's size.
            FISH_TTS: max(settings.http.max_body_bytes, settings.voices.max_file_bytes),
            FISH_ASR: settings.asr.max_bytes,
            "/api/open/create-model": upload_limit,
            "/api/open/v1/speech/transcriptions": settings.asr.max_bytes,
            "/api/open/v1/files": settings.asr.max_bytes,
            "/v1/audio/transcriptions": settings.asr.max_bytes,
            "/v1/audio/translations": settings.asr.max_bytes,
        },
        trust_client_id=settings.http.trust_client_request_id,
        path_headers=legacy_headers,
    )
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    return app
