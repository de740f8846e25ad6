"""The published schema states what this server enforces: its versions, languages, models, upload
counts and webhook URL rule, taken from its settings and engines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openfish.config import WebhookSettings
from openfish.errors import InvalidRequest
from openfish.services.webhooks.rules import validate_webhook_url, webhook_url_pattern
from tests.conftest import Harness


async def schema_of(harness: Harness) -> dict[str, Any]:
    response = await harness.client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_tts_versions_emotion_and_languages_are_published(harness: Harness) -> None:
    tts = (await schema_of(harness))["components"]["schemas"]["TtsBody"]
    versions = harness.services.settings.tts.versions
    assert tts["properties"]["version"]["enum"] == list(versions)
    with_emotion = [name for name, profile in versions.items() if profile.emotion]
    assert {"required": ["version"], "properties": {"version": {"enum": with_emotion}}} in tts["anyOf"]
    assert {"properties": {"emotion": {"const": "auto"}}} in tts["anyOf"]
    language = re.compile(tts["properties"]["language"]["pattern"])
    for spoken in ("auto", "en", "EN-us", "ja", "zh", "cmn", "de_DE", "fr"):
        assert language.fullmatch(spoken), spoken
    for unspoken in ("xx", "zz-top", "AUTO", "english"):
        assert not language.fullmatch(unspoken), unspoken
    assert tts["properties"]["text"]["maxLength"] == harness.services.settings.tts.max_text_chars


async def test_voice_uploads_transcription_models_and_webhook_rule_are_published(harness: Harness) -> None:
    document = await schema_of(harness)
    schemas = document["components"]["schemas"]
    form = schemas["Body_create_api_open_v1_voices_post"]["properties"]
    assert form["audioFiles"]["minItems"] == 1
    assert form["audioFiles"]["maxItems"] == harness.services.settings.voices.max_files
    models = [engine.name for engine in harness.services.engines.transcribers()]
    assert schemas["TranscriptionBody"]["properties"]["model"]["anyOf"][0]["enum"] == sorted(models)
    webhook = schemas["ProfileUpdate"]["properties"]["webhookUrl"]["anyOf"][0]
    assert webhook["pattern"] == webhook_url_pattern(harness.services.settings.webhooks)


RULES = WebhookSettings()


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.from_regex(webhook_url_pattern(RULES), fullmatch=True).filter(lambda url: len(url) <= 2048))
def test_every_url_the_pattern_allows_is_accepted(url: str) -> None:
    assert validate_webhook_url(url, RULES) == url


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=st.sampled_from("hts:/.[]@%?#0123456789abcxyzLOCAL-_ \x00é"), max_size=40))
def test_every_url_the_pattern_refuses_is_refused(url: str) -> None:
    if re.fullmatch(webhook_url_pattern(RULES), url):
        assert validate_webhook_url(url, RULES) == url
    else:
        with pytest.raises(InvalidRequest):
            validate_webhook_url(url, RULES)
