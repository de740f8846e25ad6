"""Captions and language names: what the transcription paths write, checked without a model."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from openfish.engines.base import Segment
from openfish.services.asr.captions import captions, srt, vtt
from openfish.services.asr.languages import language_name
from tests.captions import parse_srt, parse_vtt

SEGMENTS = [
    Segment(start=0.0, end=1.25, text="Hello there."),
    Segment(start=1.25, end=3723.0456, text="An hour --> later,\n\nacross lines."),
]


def test_srt_numbers_cues_with_comma_milliseconds() -> None:
    text = srt(SEGMENTS)
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n")
    assert "\n2\n00:00:01,250 --> 01:02:03,046\n" in text
    # A blank line would end the cue and an arrow would read as timing: neither survives.
    assert parse_srt(text) == [
        (0.0, 1.25, "Hello there."),
        (1.25, 3723.046, "An hour -> later,\nacross lines."),
    ]


def test_vtt_has_its_header_and_dot_milliseconds() -> None:
    text = vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello there.\n")
    assert parse_vtt(text) == [
        (0.0, 1.25, "Hello there."),
        (1.25, 3723.046, "An hour -> later,\nacross lines."),
    ]


def test_no_segments_give_empty_captions() -> None:
    assert srt([]) == ""
    assert vtt([]).strip() == "WEBVTT"
    with pytest.raises(ValueError, match="caption format"):
        captions([], "ass")


def test_every_whisper_language_has_a_name() -> None:
    assert {code for code in _LANGUAGE_CODES if language_name(code) == code} == set()
    assert language_name("en") == "english"
    assert language_name("EN") == "english"
    assert language_name("xx") == "xx"
