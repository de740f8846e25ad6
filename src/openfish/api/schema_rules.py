"""What this server enforces beyond the request models' own types, written into its OpenAPI schema.

The request models describe types and ranges; which versions, languages, models and webhook targets
a server accepts depends on its settings and installed engines, so those facts are added to the
document when it is built. Rules that relate two fields and that JSON Schema can express (emotion
needs a version that supports it) are written as ``anyOf``; rules it cannot express (the three
voice aliases must agree, a usage period spans at most 366 days, text needs a letter or a digit)
are stated in the descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from openfish.config import Settings
from openfish.engines.registry import EngineRegistry
from openfish.services.tts.planner import base_language
from openfish.services.webhooks.rules import webhook_url_pattern

#: Request models that carry the TTS options (sync, jobs, legacy, realtime).
TTS_MODELS = ("TtsBody", "LegacyTtsBody", "LiveTtsStart", "LegacyLiveTtsStart")
#: Multipart bodies of voice creation (v1 and legacy), as FastAPI names them.
VOICE_FORMS = ("Body_create_api_open_v1_voices_post", "Body_create_model_api_open_create_model_post")
TEXT_RULE = (
    "What to say: at least one letter or digit in any script (text of punctuation, symbols or "
    "invisible characters alone is refused with 400)."
)
ALIAS_RULE = (
    "voiceId, reference_id and modelId are aliases: give one, or the same voice in each (different "
    "voices are refused with 400)."
)

Document = dict[str, Any]


def enforced_rules(settings: Settings, engines: EngineRegistry) -> Callable[[Document], None]:
    """A function that writes this server's rules into its OpenAPI document."""

    def apply(document: Document) -> None:
        schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
        for name in TTS_MODELS:
            if name in schemas:
                _tts_rules(schemas[name], settings, engines)
        for name in VOICE_FORMS:
            if name in schemas:
                _voice_form_rules(schemas[name], settings)
        if "ProfileUpdate" in schemas:
            _webhook_rules(schemas["ProfileUpdate"], settings)
        models = {engine.name: engine for engine in engines.transcribers()}
        for name in ("TranscriptionBody", "LiveAsrStart"):
            if name in schemas and models:
                _asr_rules(schemas[name]["properties"], models)
        for operation in _operations(document):
            for content in operation.get("requestBody", {}).get("content", {}).values():
                properties = content.get("schema", {}).get("properties", {})
                if "file" in properties and models:
                    _asr_rules(properties, models)  # the multipart form of transcription

    return apply


def _tts_rules(schema: dict[str, Any], settings: Settings, engines: EngineRegistry) -> None:
    properties = schema["properties"]
    versions = settings.tts.versions
    version = _without(properties["version"], "maxLength", "examples")
    properties["version"] = {**version, "enum": list(versions)}
    if properties["text"].get("minLength"):
        properties["text"].update(maxLength=settings.tts.max_text_chars, description=TEXT_RULE)
    voices = [voice for engine in engines.speech_engines() for voice in engine.voices()]
    languages = {base_language(voice.language) for voice in voices}
    if "zh" in languages:
        languages.add("cmn")
    properties["language"]["pattern"] = rf"^(?:auto|{_one_of(languages)}(?:[-_][A-Za-z0-9]{{2,8}})?)$"
    with_emotion = [name for name, profile in versions.items() if profile.emotion]
    emotion_branches: list[dict[str, Any]] = [{"properties": {"emotion": {"const": "auto"}}}]
    if with_emotion:
        versions_with_emotion = {"version": {"enum": with_emotion}}
        emotion_branches.insert(0, {"required": ["version"], "properties": versions_with_emotion})
    schema["anyOf"] = emotion_branches
    properties["emotion"]["description"] = f"Only with version {', '.join(with_emotion) or '(none here)'}."
    for alias in ("voiceId", "reference_id", "modelId"):
        properties[alias]["description"] = f"{properties[alias].get('description', '')} {ALIAS_RULE}".strip()


def _voice_form_rules(schema: dict[str, Any], settings: Settings) -> None:
    properties = schema["properties"]
    limit = settings.voices.max_files
    properties["audioFiles"].update(minItems=1, maxItems=limit)
    transcripts = properties["transcripts"]["anyOf"][0]
    transcripts.update(maxItems=limit, description="At most one per audio file, in the same order.")
    languages = {base_language(language) for language in settings.voices.base_voices}
    properties["language"]["pattern"] = rf"^{_one_of(languages)}(?:[-_][A-Za-z0-9]{{2,8}})?$"


def _webhook_rules(schema: dict[str, Any], settings: Settings) -> None:
    rules = settings.webhooks
    url = {"type": "string", "maxLength": rules.max_url_length, "pattern": webhook_url_pattern(rules)}
    schema["properties"]["webhookUrl"]["anyOf"] = [url, {"type": "string", "maxLength": 0}, {"type": "null"}]
    schema["properties"]["webhookUrl"]["description"] = (
        "An https URL of a public DNS name, or null or an empty string to remove it."
    )


def _asr_rules(properties: dict[str, Any], models: dict[str, Any]) -> None:
    if "model" in properties:
        enum = {"type": "string", "enum": sorted(models)}
        model = properties["model"]
        if "anyOf" in model:
            model["anyOf"] = [enum, {"type": "null"}]
        else:
            model.update(enum)
            model.pop("maxLength", None)
    languages = set().union(*(engine.languages() for engine in models.values()))
    properties["language"]["pattern"] = rf"^(?:auto|{_one_of(languages)})$"
    properties["language"]["description"] = "auto, or a language the chosen model knows."


def _operations(document: Document) -> Iterable[dict[str, Any]]:
    for operations in document.get("paths", {}).values():
        yield from operations.values()


def _one_of(codes: Iterable[str]) -> str:
    """A case-insensitive alternation of language codes (the server lowercases them)."""
    alternatives = sorted({code.lower() for code in codes}, key=lambda code: (-len(code), code))
    return "(?:" + "|".join("".join(f"[{c}{c.upper()}]" for c in code) for code in alternatives) + ")"


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in keys}
