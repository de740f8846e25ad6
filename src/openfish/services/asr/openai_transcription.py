"""The OpenAI audio API's transcription in our terms: its ``model`` names, its refused diarization
fields, and our transcripts in its shapes (json with Whisper's word probabilities as ``logprobs``,
verbose_json, the streamed events)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from openfish.engines.base import Segment, Transcript, Word
from openfish.errors import InvalidRequest

#: OpenAI's transcription models: each means this server's default model (``asr.default_model``).
OPENAI_TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
#: OpenAI's models and fields that tell speakers apart. No diarization model runs here, so each is
#: refused by name rather than answered without the speakers.
DIARIZATION_MODELS = ("gpt-4o-transcribe-diarize",)
DIARIZATION_FIELDS = ("known_speaker_names", "known_speaker_references")
_NO_DIARIZATION = "speaker diarization is not available on this server (no diarization model runs here)"
#: The probability a logprob is taken of at the least: Whisper may report 0, and JSON has no -inf.
_FLOOR = 1e-12


def transcription_model(model: str) -> str | None:
    """Our model for an OpenAI ``model``: None (the default) for OpenAI's, else the name itself,
    which ``TranscriptionService`` checks."""
    return None if model in OPENAI_TRANSCRIPTION_MODELS else model


def transcription_models(ours: list[str]) -> list[tuple[str, bool]]:
    """The ``model`` names transcription answers to, each with whether it is ours."""
    return [*((name, False) for name in OPENAI_TRANSCRIPTION_MODELS), *((name, True) for name in ours)]


def refuse_diarization(fields: Mapping[str, Any]) -> None:
    """400 naming the first diarization field of a request's ``fields`` (as sent), if any."""
    if fields.get("model") in DIARIZATION_MODELS:
        raise InvalidRequest(
            f"model: {fields['model']} diarizes speakers, but {_NO_DIARIZATION}; use whisper-1 or "
            "one of /v1/models"
        )
    if fields.get("response_format") == "diarized_json":
        raise InvalidRequest(
            "response_format: diarized_json labels speakers, but "
            f"{_NO_DIARIZATION}; use json, text, srt, vtt or verbose_json"
        )
    for name in DIARIZATION_FIELDS:
        if name in fields:
            raise InvalidRequest(f"{name}: {_NO_DIARIZATION}")


def word_logprobs(words: Iterable[Word], *, first: bool) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs`` from Whisper's word probabilities: one entry per word, not per BPE
    token; ``token`` is the word with the space before it (none before the transcript's ``first``
    word), ``logprob`` ln(probability), ``bytes`` the token in UTF-8."""
    listed = []
    for index, word in enumerate(words):
        token = word.text if first and index == 0 else " " + word.text
        logprob = math.log(max(word.probability, _FLOOR))
        listed.append({"token": token, "logprob": logprob, "bytes": list(token.encode())})
    return listed


def json_body(transcript: Transcript, *, logprobs: bool) -> dict[str, Any]:
    """json's ``text`` and, if asked, ``logprobs`` (the usage is the route's)."""
    body: dict[str, Any] = {"text": transcript.text}
    if logprobs:
        body["logprobs"] = word_logprobs(_words_of(transcript.segments), first=True)
    return body


def verbose_body(transcript: Transcript, *, segments: bool, words: bool) -> dict[str, Any]:
    """verbose_json's duration, text, and the segments and words if wanted."""
    body: dict[str, Any] = {"duration": round(transcript.duration, 3), "text": transcript.text}
    if segments:
        body["segments"] = [
            {
                "id": index,
                "seek": s.seek,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for index, s in enumerate(transcript.segments)
        ]
    if words:
        body["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in _words_of(transcript.segments)
        ]
    return body


def delta_event(segment: Segment, index: int, *, logprobs: bool) -> dict[str, Any]:
    """``transcript.text.delta`` for the ``index``-th segment (a space before all but the first:
    the deltas concatenated are the text), with its words' ``logprobs`` if asked."""
    event: dict[str, Any] = {"type": "transcript.text.delta", "delta": (" " if index else "") + segment.text}
    if logprobs:
        event["logprobs"] = word_logprobs(segment.words or [], first=index == 0)
    return event


def done_event(transcript: Transcript, *, logprobs: bool) -> dict[str, Any]:
    """``transcript.text.done`` with the whole text (and every word's ``logprobs`` if asked)."""
    return {"type": "transcript.text.done", **json_body(transcript, logprobs=logprobs)}


def _words_of(segments: list[Segment]) -> list[Word]:
    return [w for s in segments for w in s.words or []]
