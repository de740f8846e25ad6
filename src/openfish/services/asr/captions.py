"""A transcript as captions: SubRip (``.srt``) and WebVTT (``.vtt``), one cue per segment.

Used by every transcription path that offers ``response_format`` ``srt`` / ``vtt`` (v1 and the
OpenAI-compatible one), so both write the same files.
"""

from __future__ import annotations

from collections.abc import Sequence

from openfish.engines.base import Segment

#: Content types of the caption formats.
CAPTION_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


def _timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``; negative times are clamped to zero."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" would read as a timing line.
    lines = [line.strip() for line in text.replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line) or "…"


def srt(segments: Sequence[Segment]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, separated by blank lines."""
    cues = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{_cue_text(s.text)}\n"
        for index, s in enumerate(segments, 1)
    ]
    return "\n".join(cues)


def vtt(segments: Sequence[Segment]) -> str:
    """WebVTT: the ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    cues = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{_cue_text(s.text)}\n" for s in segments
    ]
    return "\n".join(["WEBVTT\n", *cues])


def captions(segments: Sequence[Segment], fmt: str) -> str:
    """The captions of ``segments`` in ``fmt`` (``srt`` or ``vtt``)."""
    if fmt == "srt":
        return srt(segments)
    if fmt == "vtt":
        return vtt(segments)
    raise ValueError(f"unknown caption format {fmt!r}")
