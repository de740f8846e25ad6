"""Voices as the API shows them: one view for built-in and made voices, with whose it is and how
much it is used."""

from __future__ import annotations

from dataclasses import dataclass, field

from openfish.engines.base import VoiceInfo
from openfish.services.voices.tasks import Usage
from openfish.store.models import Voice

CUSTOM_PROVIDER = "custom"


@dataclass(frozen=True)
class VoiceView:
    """A voice as the API lists it: built-in or made, with whose it is and its usage
    (``services/voices/tasks.py``)."""

    id: str
    name: str
    provider: str
    language: str
    description: str = ""
    visibility: str = "public"
    status: str = "ready"
    failure_reason: str | None = None
    is_personal: bool = False
    record: Voice | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class VoicePage:
    """One page of a voice listing."""

    total: int
    items: list[VoiceView]


def builtin_view(info: VoiceInfo, usage: Usage | None = None) -> VoiceView:
    """A built-in voice (an engine's)."""
    return VoiceView(
        id=info.id, name=info.name, provider=info.engine, language=info.language, usage=usage or Usage()
    )


def custom_view(voice: Voice, account_id: str, usage: Usage | None = None) -> VoiceView:
    """A made voice as ``account_id`` sees it."""
    return VoiceView(
        id=voice.id,
        name=voice.name,
        provider=CUSTOM_PROVIDER,
        language=voice.language,
        description=voice.description,
        visibility=voice.visibility,
        status=voice.status,
        failure_reason=voice.failure_reason,
        is_personal=voice.account_id == account_id,
        record=voice,
        usage=usage or Usage(),
    )
