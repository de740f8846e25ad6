"""Where a long recording is cut for Whisper: stretches of speech found by the VAD (Silero, through
faster-whisper), cut at pauses where longer than a window and packed in order and without overlap
into windows of at most one Whisper window (30 s) of audio, with the silence between stretches
left out.

A :class:`Window` remembers which samples of the recording it holds, so a time inside its audio
maps back to seconds of the recording exactly, whatever silence was left out between its spans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openfish.engines.base import Audio, SpeechFilter

RATE = 16_000
#: Samples per VAD decision (32 ms).
_FRAME = 512
#: How far before the limit a long stretch of speech may be cut.
_SEARCH_SECONDS = 10


@dataclass(frozen=True)
class Window:
    """Audio for one decode: ``spans``, ``[start, end)`` sample ranges of the recording, in order."""

    spans: tuple[tuple[int, int], ...]

    @property
    def samples(self) -> int:
        return sum(end - start for start, end in self.spans)

    @property
    def seconds(self) -> float:
        return self.samples / RATE

    @property
    def first_frame(self) -> int:
        """Where the window starts in the recording, in Whisper's 10 ms frames."""
        return self.spans[0][0] // (RATE // 100)

    def audio(self, recording: Audio) -> Audio:
        return np.concatenate([recording[start:end] for start, end in self.spans])

    def time(self, local: float, anchor: float | None = None) -> float:
        """Seconds into the recording of ``local`` seconds into this window's audio, counted in the
        span that holds ``anchor`` (default: ``local``; a word is mapped by its middle so that both
        its ends stay in one span) and kept inside that span."""
        wanted = round(min(max(local if anchor is None else anchor, 0.0), self.seconds) * RATE)
        before = 0
        for index, (start, end) in enumerate(self.spans):
            if wanted < before + end - start or index == len(self.spans) - 1:
                return min(max(start + round(local * RATE) - before, start), end) / RATE
            before += end - start
        raise AssertionError("a window has at least one span")

    def speech_seconds(self, quiet: npt.NDArray[np.bool_], start: float, end: float) -> float:
        """Seconds the VAD heard speech in, from ``start`` to ``end`` seconds of this window's audio
        (``quiet`` is :func:`quiet_frames` of the recording)."""
        low, high = round(start * RATE), round(end * RATE)
        frames, before = 0, 0
        for first, last in self.spans:
            inside = max(low, before), min(high, before + last - first)
            if inside[1] > inside[0]:
                begin, stop = first + inside[0] - before, first + inside[1] - before
                frames += int(np.count_nonzero(~quiet[begin // _FRAME : -(-stop // _FRAME)]))
            before += last - first
        return frames * _FRAME / RATE

    def pause_after(self, quiet: npt.NDArray[np.bool_], local: float, within: float) -> float:
        """The first moment from ``local`` seconds of this window's audio, and at most ``within``
        seconds later, at which the VAD hears no speech (``local`` itself where there is none)."""
        moment = local
        while moment < min(local + within, self.seconds):
            if quiet[round(self.time(moment) * RATE) // _FRAME]:
                return moment
            moment += _FRAME / RATE
        return local

    def after(self, local: float) -> Window | None:
        """What is left of this window after ``local`` seconds of its audio (None: nothing)."""
        cut = round(local * RATE)
        kept: list[tuple[int, int]] = []
        before = 0
        for start, end in self.spans:
            if before + end - start > cut:
                kept.append((max(start, start + cut - before), end))
            before += end - start
        return Window(tuple(kept)) if kept else None


def speech_windows(
    recording: Audio, speech: SpeechFilter, seconds: float, quiet: npt.NDArray[np.bool_]
) -> list[Window]:
    """The recording's speech (16 kHz) packed into windows of at most ``seconds`` of audio.

    ``speech`` keeps its meaning: a silence must last ``min_silence_ms`` to end a stretch, and each
    stretch keeps ``padding_ms`` on either side. A stretch longer than a window is cut at the
    longest pause in the last ``_SEARCH_SECONDS`` before the limit (between sentences, as a rule;
    the VAD's own cut, at the last pause of 100 ms, often falls at a comma and leaves half a
    sentence at the start of the next window, which Whisper then mishears). ``quiet`` is
    :func:`quiet_frames` of the recording."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(
        recording,
        VadOptions(
            threshold=speech.threshold,
            min_silence_duration_ms=speech.min_silence_ms,
            speech_pad_ms=speech.padding_ms,
        ),
    )
    limit = int(seconds * RATE)
    pieces: list[tuple[int, int]] = []
    for stretch in found:
        start, end = int(stretch["start"]), int(stretch["end"])
        while end - start > limit:
            search = min(_SEARCH_SECONDS * RATE, limit // 2)
            cut = _longest_pause(quiet, start + limit - search, start + limit)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    windows: list[Window] = []
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        if spans and sum(b - a for a, b in spans) + end - start > limit:
            windows.append(Window(tuple(spans)))
            spans = []
        spans.append((start, end))
    if spans:
        windows.append(Window(tuple(spans)))
    return windows


def quiet_frames(recording: Audio, threshold: float) -> npt.NDArray[np.bool_]:
    """Which of the recording's 32 ms VAD frames are quiet: under the level at which the VAD ends
    a stretch of speech (``threshold`` less 0.15, as faster-whisper's VAD has it)."""
    from faster_whisper.vad import get_vad_model

    padded = np.pad(recording, (0, _FRAME - recording.size % _FRAME))
    probabilities = np.asarray(get_vad_model()(padded)).reshape(-1)
    return probabilities < max(threshold - 0.15, 0.01)


def _longest_pause(quiet: npt.NDArray[np.bool_], low: int, high: int) -> int:
    """The sample in the middle of the longest run of quiet frames between ``low`` and ``high``
    (the latest of equal runs); ``high`` where there is none."""
    first, last = -(-low // _FRAME), high // _FRAME
    best, best_length, run = high, 0, 0
    for frame in range(first, last):
        run = run + 1 if quiet[frame] else 0
        if run and run >= best_length:
            best, best_length = (frame + 1) * _FRAME - run * _FRAME // 2, run
    return best
