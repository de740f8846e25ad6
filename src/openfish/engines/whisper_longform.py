"""Long recordings in Whisper: windows cut at speech pauses (``whisper_windows``), decoded in
batches, each window on its own (never conditioned on another window's text).

faster-whisper's sequential path walks a recording window by window and, when a window's text
compresses too well, decodes it again at up to five rising temperatures, five samples each. Ordinary
repetitive speech (lists, refrains, read-out tables) compresses well, so it cost several times as
much as other speech and came back drifted. Here every window is decoded greedily, a batch at a
time (encoder and decoder run on the whole batch), its words aligned to the audio, and two repairs
keep the result whole:

- **Speech left unheard.** Whisper sometimes stops before the end of its window's speech (a
  sentence that ends in the last seconds), or covers several sentences with one segment's
  timestamps while writing only the first (repetitive speech especially). Where the aligned words
  leave at least ``_UNHEARD_SECONDS`` of what the VAD calls speech untranscribed after something
  was heard, the decode is kept up to the last word before that gap and the rest of the window,
  from the next pause, is decoded again as a window of its own, at most ``_MAX_RESTS`` times in a
  row. Windows never overlap and a rest starts after the last word kept, so nothing is heard twice.
- **Bounded fallback.** A window whose decode fails Whisper's checks (a segment whose text
  compresses too well — a repetition loop, not repeated sentences, which each get a segment with
  their own timestamps — or a low average log probability, unless it is silence) is decoded once
  more at ``_RETRY_TEMPERATURE`` and Whisper's own rule picks between the two decodes: a window
  costs at most two decodes however its speech sounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from math import ceil
from typing import Any

import numpy as np
import numpy.typing as npt

from openfish.engines.base import Audio
from openfish.engines.whisper_windows import Window

#: Whisper's own checks, as on the sequential path.
_COMPRESSION_LIMIT = 2.4
_LOGPROB_LIMIT = -1.0
_NO_SPEECH_LIMIT = 0.6
#: The first step of Whisper's temperature ladder, one sample.
_RETRY_TEMPERATURE = 0.2
_MAX_RESTS = 2
#: Speech (by the VAD) no aligned word covers that counts as left unheard: more than the slack of
#: word alignment and the VAD's own edges, less than a sentence.
_UNHEARD_SECONDS = 1.0
#: How far after the last word heard a rest may start, at the next pause.
_SNAP_SECONDS = 1.0
#: faster-whisper's defaults: punctuation joined to the word after or before it.
_PREPEND_PUNCTUATION = "\"'“¿([{-"
_APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"


@dataclass
class _Decode:
    """One window's decode: its tokens and Whisper's measures, split into timestamped segments
    (``start``, ``end`` in seconds of the window's audio, ``tokens``, ``compression_ratio`` and,
    once aligned, ``words``); text after the last timestamp is a segment to the window's end."""

    avg_logprob: float
    no_speech_prob: float
    temperature: float
    segments: list[dict[str, Any]] = field(default_factory=list)

    def passes(self) -> bool:
        if self.no_speech_prob > _NO_SPEECH_LIMIT and self.avg_logprob < _LOGPROB_LIMIT:
            return True  # silence: left out later, nothing to retry
        worst = max((s["compression_ratio"] for s in self.segments), default=0.0)
        return worst <= _COMPRESSION_LIMIT and self.avg_logprob >= _LOGPROB_LIMIT

    def rank(self) -> tuple[bool, bool, float]:
        """Whisper's choice between decodes: one that passes, else one under the compression limit,
        then the higher average log probability."""
        worst = max((s["compression_ratio"] for s in self.segments), default=0.0)
        return self.passes(), worst <= _COMPRESSION_LIMIT, self.avg_logprob


_Pair = tuple[Window, _Decode]


class LongFormDecoder:
    """Decodes windows of one recording in batches of ``batch_size``; ``model`` is a loaded
    ``faster_whisper.WhisperModel``, ``tokenizer`` its tokenizer for the language and task, and
    ``quiet`` the recording's quiet VAD frames (``whisper_windows.quiet_frames``)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        quiet: npt.NDArray[np.bool_],
        *,
        prompt: str | None,
        temperature: float | None,
        batch_size: int,
    ) -> None:
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model, self._tokenizer, self._quiet = model, tokenizer, quiet
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        self._prompt: list[int] = model.get_prompt(tokenizer, previous_tokens=previous)
        self._temperature = temperature
        self._batch_size = batch_size
        self._suppress = list(get_suppressed_tokens(tokenizer, [-1]))

    def segments(self, recording: Audio, windows: list[Window], words: bool) -> Iterator[Any]:
        """faster-whisper ``Segment``s in recording order, timed in seconds of the recording (with
        their ``words`` if asked); a batch's segments come out as soon as that batch is decoded."""
        number = 0
        for first in range(0, len(windows), self._batch_size):
            for group in self._decode(recording, windows[first : first + self._batch_size], 0):
                for window, decode in group:
                    for raw in decode.segments:
                        number += 1
                        yield self._segment(number, window, decode, raw, words)

    def _decode(self, recording: Audio, windows: list[Window], rests: int) -> list[list[_Pair]]:
        """For each window, its decode followed by those of the rest of it left unheard."""
        from faster_whisper.audio import pad_or_trim

        extract = self._model.feature_extractor
        features = np.stack([pad_or_trim(extract(w.audio(recording))[..., :-1]) for w in windows])
        encoded = self._model.encode(features)
        first = self._temperature if self._temperature is not None else 0.0
        decodes = self._generate(encoded, windows, first)
        failed = [i for i, d in enumerate(decodes) if not d.passes()]
        if self._temperature is None and failed:
            again = self._generate(
                self._model.encode(features[failed]), [windows[i] for i in failed], _RETRY_TEMPERATURE
            )
            for i, retry in zip(failed, again, strict=True):
                decodes[i] = max(decodes[i], retry, key=_Decode.rank)
        # Words for every window, asked for or not: they tell what was heard.
        self._model.add_word_timestamps(
            [d.segments for d in decodes],
            self._tokenizer,
            encoded,
            [_frames(w) for w in windows],
            _PREPEND_PUNCTUATION,
            _APPEND_PUNCTUATION,
            0.0,
        )
        groups = [[(window, decode)] for window, decode in zip(windows, decodes, strict=True)]
        if rests == _MAX_RESTS:
            return groups
        left = [
            (i, rest)
            for i, (w, d) in enumerate(zip(windows, decodes, strict=True))
            if (rest := self._unheard(w, d))
        ]
        if left:
            # Each window's rest goes right after it, so segments stay in recording order.
            finished = self._decode(recording, [rest for _, rest in left], rests + 1)
            for (i, _), group in zip(left, finished, strict=True):
                groups[i].extend(group)
        return groups

    def _unheard(self, window: Window, decode: _Decode) -> Window | None:
        """The part of ``window`` after the last whole segment before the first speech its decode
        left unheard (the decode is cut back to those segments), or None where it heard it all.
        Speech unheard inside the first segment is let be: decoding the whole window again would
        hear it the same way."""
        heard = kept = 0.0
        for n, segment in enumerate(decode.segments):
            for word in segment.get("words", []):
                if not any(c.isalnum() for c in word["word"]):
                    continue  # punctuation's span is loose
                if kept and window.speech_seconds(self._quiet, heard, word["start"]) >= _UNHEARD_SECONDS:
                    del decode.segments[n:]
                    return self._rest(window, kept)
                heard = max(heard, float(word["end"]))
            kept = heard
        if heard and window.speech_seconds(self._quiet, heard, window.seconds) >= _UNHEARD_SECONDS:
            return self._rest(window, heard)
        return None

    def _rest(self, window: Window, heard: float) -> Window | None:
        """The window from the pause after ``heard``: the alignment can end the last word heard a
        few tenths of a second early, and its end decoded again would be heard twice."""
        return window.after(window.pause_after(self._quiet, heard, _SNAP_SECONDS))

    def _generate(self, encoded: Any, windows: list[Window], temperature: float) -> list[_Decode]:
        sampling = {"sampling_temperature": temperature, "sampling_topk": 0} if temperature > 0 else {}
        results = self._model.model.generate(
            encoded,
            [list(self._prompt) for _ in windows],
            beam_size=1,
            max_length=self._model.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
            **sampling,
        )
        decodes = []
        for window, result in zip(windows, results, strict=True):
            tokens = list(result.sequences_ids[0])
            split, _seek, _closed = self._model._split_segments_by_timestamps(
                tokenizer=self._tokenizer,
                tokens=tokens,
                time_offset=0.0,
                segment_size=_frames(window),
                segment_duration=window.seconds,
                seek=0,
            )
            left = tokens[sum(len(s["tokens"]) for s in split) :]
            if any(t < self._tokenizer.eot for t in left):
                # Text after the last timestamp: an unfinished sentence, kept as far as it goes.
                start = split[-1]["end"] if split else 0.0
                split.append({"seek": 0, "start": start, "end": window.seconds, "tokens": left})
            segments = [{**s, "compression_ratio": self._ratio(s["tokens"])} for s in split]
            decodes.append(
                _Decode(
                    avg_logprob=float(result.scores[0]) * len(tokens) / (len(tokens) + 1),
                    no_speech_prob=float(result.no_speech_prob),
                    temperature=temperature,
                    segments=segments,
                )
            )
        return decodes

    def _ratio(self, tokens: list[int]) -> float:
        from faster_whisper.transcribe import get_compression_ratio

        return float(get_compression_ratio(self._tokenizer.decode(tokens)))

    def _segment(self, number: int, window: Window, decode: _Decode, raw: dict[str, Any], words: bool) -> Any:
        """A faster-whisper ``Segment`` timed in the recording; words are mapped by their middle,
        so each stays inside one span of the window."""
        from faster_whisper.transcribe import Segment, Word

        start = window.time(raw["start"])
        end = window.time(raw["end"], anchor=raw["end"] - 0.01)
        mapped = [
            Word(
                start=window.time(w["start"], anchor=(w["start"] + w["end"]) / 2),
                end=window.time(w["end"], anchor=(w["start"] + w["end"]) / 2),
                word=w["word"],
                probability=w["probability"],
            )
            for w in raw.get("words", [])
        ]
        if mapped:
            start, end = mapped[0].start, mapped[-1].end
        return Segment(
            id=number,
            seek=window.first_frame,
            start=start,
            end=max(start, end),
            text=self._tokenizer.decode(raw["tokens"]),
            tokens=raw["tokens"],
            avg_logprob=decode.avg_logprob,
            compression_ratio=raw["compression_ratio"],
            no_speech_prob=decode.no_speech_prob,
            words=mapped if words else None,
            temperature=decode.temperature,
        )


def _frames(window: Window) -> int:
    """The window's length in 10 ms frames, as faster-whisper's batched pipeline counts it."""
    return int(ceil(window.seconds) * 100)
