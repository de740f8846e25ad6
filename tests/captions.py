"""Parsing captions (SubRip, WebVTT) as a player would, to check what the server wrote."""

from __future__ import annotations

import re

_SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n([^\n]+(?:\n[^\n]+)*)"
)
_VTT_CUE = re.compile(
    r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n([^\n]+(?:\n[^\n]+)*)"
)
Cue = tuple[float, float, str]


def seconds(*parts: str) -> float:
    hours, minutes, secs, millis = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_srt(text: str) -> list[Cue]:
    blocks = [block for block in text.strip().split("\n\n") if block]
    cues = []
    for number, block in enumerate(blocks, 1):
        match = _SRT_CUE.fullmatch(block)
        assert match, block
        assert int(match[1]) == number
        cues.append((seconds(*match.groups()[1:5]), seconds(*match.groups()[5:9]), match[10]))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        match = _VTT_CUE.fullmatch(block)
        assert match, block
        cues.append((seconds(*match.groups()[:4]), seconds(*match.groups()[4:8]), match[9]))
    return cues


def assert_timed_inside(cues: list[Cue], duration: float) -> None:
    assert cues
    starts = [start for start, _end, _text in cues]
    assert starts == sorted(starts)
    for start, end, _text in cues:
        assert 0 <= start <= end <= duration + 0.05
