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
from openfish.paths import FISH_ASR, FISH_TTS
from openfish.services.asr.openai_transcription import OPENAI_TRANSCRIPTION_MODELS
from openfish.services.tts.fish_request import DEFAULT_MODEL, fish_models
from openfish.services.tts.openai_speech import speech_models
from openfish.services.tts.planner import base_language
from openfish.services.voices.labels import MAX_TAG_CHARS, MAX_TAGS, TAG_PATTERN
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
        _fish_rules(document, settings, {engine.name: engine for engine in engines.transcribers()})
        if "SpeechBody" in schemas:
            _openai_speech_rules(schemas["SpeechBody"], settings)
        models = {engine.name: engine for engine in engines.transcribers()}
        for name in ("TranscriptionBody", "TranscriptionJobBody", "LiveAsrStart"):
            if name in schemas and models:
                _asr_rules(schemas[name]["properties"], models)
        for operation in _operations(document):
            # The OpenAI paths also take OpenAI's model names (each meaning the default model).
            aliases = OPENAI_TRANSCRIPTION_MODELS if "openai" in operation.get("tags", ()) else ()
            for content in operation.get("requestBody", {}).get("content", {}).values():
                properties = content.get("schema", {}).get("properties", {})
                if "file" in properties and models:
                    _asr_rules(properties, models, aliases)  # the multipart form of transcription

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


def _openai_speech_rules(schema: dict[str, Any], settings: Settings) -> None:
    properties = schema["properties"]
    model = _without(properties["model"], "maxLength", "examples")
    properties["model"] = {**model, "enum": [name for name, _ours in speech_models(settings.tts)]}
    properties["input"].update(maxLength=settings.tts.max_text_chars, description=TEXT_RULE)


def _asr_rules(properties: dict[str, Any], models: dict[str, Any], aliases: Iterable[str] = ()) -> None:
    if "model" in properties:
        enum = {"type": "string", "enum": [*aliases, *sorted(models)]}
        model = properties["model"]
        if "anyOf" in model:
            model["anyOf"] = [enum, {"type": "null"}]
        else:
            model.update(enum)
            model.pop("maxLength", None)
    if "language" not in properties:
        return  # translation: the language is heard
    languages = set().union(*(engine.languages() for engine in models.values()))
    language = properties["language"]
    # Optional form fields are ``anyOf: [string, null]``; the pattern belongs to the string.
    target = language["anyOf"][0] if "anyOf" in language else language
    target["pattern"] = rf"^(?:auto|{_one_of(languages)})$"
    language["description"] = "auto, or a language the chosen model knows."


def _fish_rules(document: Document, settings: Settings, models: dict[str, Any]) -> None:
    """The Fish Audio API's paths: the TTS text limit and ``model`` header, the ASR languages, and
    the tags, files and language of model forms."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for name in ("FishTtsBody", "FishLiveStart"):
        if name in schemas:
            text = schemas[name]["properties"]["text"]
            text.update(maxLength=settings.tts.max_text_chars, description=TEXT_RULE)
    tts = document.get("paths", {}).get(FISH_TTS, {}).get("post", {})
    for parameter in tts.get("parameters", []):
        if parameter["name"] == "model":  # a header is never null: absent means the default
            parameter["schema"] = {
                "type": "string",
                "enum": fish_models(settings.tts),
                "default": DEFAULT_MODEL,
            }
    if "FishAsrBody" in schemas and models:
        _asr_rules(schemas["FishAsrBody"]["properties"], models)
    form = document.get("paths", {}).get(FISH_ASR, {}).get("post", {}).get("requestBody", {})
    properties = form.get("content", {}).get("multipart/form-data", {}).get("schema", {}).get("properties")
    if properties and models:
        _asr_rules(properties, models)
    tag = {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS, "pattern": TAG_PATTERN}
    tags = {"anyOf": [{"type": "array", "items": tag, "maxItems": MAX_TAGS}]}
    for name in schemas:
        if name.startswith(("Body_create_model_model_", "Body_update_model_model_")):
            properties = schemas[name]["properties"]
            properties["tags"] = {**properties["tags"], **tags}
            for field, schema in properties.items():
                # A form field is sent or not: it is never null (absent means unchanged or default).
                if "anyOf" in schema:
                    branches = [branch for branch in schema.pop("anyOf") if branch.get("type") != "null"]
                    properties[field] = {**schema, **branches[0]}
        if name.startswith("Body_create_model_model_"):
            created = schemas[name]["properties"]
            created["voices"].update(minItems=1, maxItems=settings.voices.max_files)
            created["texts"].update(maxItems=settings.voices.max_files)
            languages = {base_language(language) for language in settings.voices.base_voices}
            created["language"]["pattern"] = rf"^{_one_of(languages)}(?:[-_][A-Za-z0-9]{{2,8}})?$"


def _operations(document: Document) -> Iterable[dict[str, Any]]:
    for operations in document.get("paths", {}).values():
        yield from operations.values()


def _one_of(codes: Iterable[str]) -> str:
    """A case-insensitive alternation of language codes (the server lowercases them)."""
    alternatives = sorted({code.lower() for code in codes}, key=lambda code: (-len(code), code))
    return "(?:" + "|".join("".join(f"[{c}{c.upper()}]" for c in code) for code in alternatives) + ")"


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in keys}
