"""Speech recognition with Whisper through faster-whisper (CTranslate2, int8 on CPU).

Two bundled models: ``whisper-base`` (multilingual) and ``whisper-tiny-en`` (English only); where
their files come from is ``whisper_models``. Audio that fits one 30 s window is decoded by
faster-whisper's own ``transcribe``; longer audio is cut at speech pauses and decoded in batches
(``whisper_longform``). Segments are handed on as they are decoded (``on_segment``), so a caller can
relay them before the whole recording is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from openfish.audio.resample import resample
from openfish.engines.base import Audio, DecodeOptions, EngineError, Segment, Transcript, Word
from openfish.engines.whisper_longform import LongFormDecoder
from openfish.engines.whisper_models import assemble_whisper_base, tiny_en_path
from openfish.engines.whisper_windows import quiet_frames, speech_windows

_RATE = 16_000
#: Audio Whisper hears at once. Longer recordings take the long-form path; shorter ones keep
#: faster-whisper's own, measured 7-10 % faster on one window (5 s and 19 s clips, both models).
_WINDOW_SECONDS = 30
#: Speech per window on the long-form path. Whisper tends to leave out a sentence that ends in the
#: last seconds of its window (it cannot tell it was not cut off), and that rest is decoded again;
#: on 400 s of Piper speech, 7 windows of 15 needed it at 30 s, none at 26 s, for the same time.
_LONG_FORM_SECONDS = 26
#: Greedy first; a decode that fails the log-probability or compression checks is tried again hotter.
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class WhisperEngine:
    """One Whisper model, loaded once and shared (CTranslate2 queues concurrent calls).

    ``prepare`` runs under the load lock before the model is read (e.g. to assemble it on disk).
    ``batch_size`` windows of a long recording are decoded at once. ``long_form=False`` decodes
    long recordings the way this engine used to (faster-whisper's sequential ``transcribe`` with
    its whole temperature ladder); only the benchmark uses it, to compare.
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        *,
        english_only: bool,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        prepare: Callable[[], object] | None = None,
        batch_size: int = 4,
        long_form: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._name = name
        self._model_dir = model_dir
        self._english_only = english_only
        self._device, self._compute_type, self._cpu_threads = device, compute_type, cpu_threads
        self._prepare = prepare
        self._batch_size, self._long_form = batch_size, long_form
        self._lock = threading.Lock()
        self._model: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self._prepare is not None:
                try:
                    self._prepare()
                except OSError as exc:
                    raise EngineError(f"{self._name}: cannot prepare model: {exc}") from exc
            if not (self._model_dir / "model.bin").is_file():
                raise EngineError(f"{self._name}: no model.bin in {self._model_dir}")
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    str(self._model_dir),
                    device=self._device,
                    compute_type=self._compute_type,
                    cpu_threads=self._cpu_threads,
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise EngineError(f"{self._name}: cannot load model: {exc}") from exc

    def languages(self) -> frozenset[str]:
        if self._english_only:
            return frozenset({"en"})
        # faster-whisper's list includes "yue", which only large-v3 models have a token for.
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return frozenset(_LANGUAGE_CODES) - {"yue"}

    def tasks(self) -> frozenset[str]:
        # English-only models have no translate token: they would transcribe instead.
        return frozenset({"transcribe"}) if self._english_only else frozenset({"transcribe", "translate"})

    def transcribe(
        self,
        audio: Audio,
        sample_rate: int,
        *,
        language: str | None,
        words: bool,
        options: DecodeOptions | None = None,
        on_segment: Callable[[Segment], None] | None = None,
    ) -> Transcript:
        options = options or DecodeOptions()
        if language is not None and language not in self.languages():
            raise ValueError(f"{self._name} cannot transcribe language {language!r}")
        if options.task not in self.tasks():
            raise ValueError(f"{self._name} cannot {options.task}")
        if sample_rate <= 0 or audio.ndim != 1:
            raise ValueError("audio must be mono samples at a positive sample rate")
        if self._english_only:
            language = "en"
        duration = audio.size / sample_rate
        samples = np.clip(np.nan_to_num(resample(audio, sample_rate, _RATE)), -1.0, 1.0)
        if samples.size < _RATE // 10:  # under 0.1 s: nothing to hear
            return Transcript(text="", language=language or "en", duration=duration, segments=[])
        self.load()
        heard, decoded = self._decode(samples, language, words, options)
        segments: list[Segment] = []
        last = 0.0
        for s in decoded:
            start = min(max(float(s.start), last), duration)
            end = min(max(float(s.end), start), duration)
            segment = Segment(
                start=start,
                end=end,
                text=s.text.strip(),
                words=_words(s.words, start, end) if words else None,
                avg_logprob=float(s.avg_logprob),
                compression_ratio=float(s.compression_ratio),
                no_speech_prob=float(s.no_speech_prob),
                temperature=float(s.temperature or 0.0),
                tokens=tuple(int(t) for t in s.tokens),
                seek=int(s.seek),
            )
            segments.append(segment)
            last = start
            if on_segment is not None:
                on_segment(segment)  # outside ``_decode``: what it raises is not an engine failure
        text = " ".join(s.text for s in segments).strip()
        return Transcript(text=text, language=language or heard, duration=duration, segments=segments)

    def _decode(
        self, samples: Audio, language: str | None, words: bool, options: DecodeOptions
    ) -> tuple[str, Iterator[Any]]:
        """The language heard and faster-whisper's segments, decoded one by one as they are taken
        (it finds the speech and the language first); blank and silent ones are left out."""
        if self._long_form and samples.size > _WINDOW_SECONDS * _RATE:
            return self._decode_long(samples, language, words, options)
        speech = options.speech
        try:
            found, info = self._model.transcribe(
                samples,
                language=language,
                task=options.task,
                initial_prompt=options.prompt or None,
                beam_size=1,
                temperature=_FALLBACK_TEMPERATURES if options.temperature is None else options.temperature,
                vad_filter=True,
                vad_parameters={
                    "threshold": speech.threshold,
                    "min_silence_duration_ms": speech.min_silence_ms,
                    "speech_pad_ms": speech.padding_ms,
                },
                word_timestamps=words,
                condition_on_previous_text=False,
                no_speech_threshold=0.6,
                log_prob_threshold=-1.0,
                compression_ratio_threshold=2.4,
            )
        except RuntimeError as exc:
            raise EngineError(f"{self._name} failed: {exc}") from exc
        return str(info.language), self._checked(found)

    def _decode_long(
        self, samples: Audio, language: str | None, words: bool, options: DecodeOptions
    ) -> tuple[str, Iterator[Any]]:
        """The same for a recording longer than a window: cut at pauses, decoded in batches."""
        from faster_whisper.tokenizer import Tokenizer

        try:
            quiet = quiet_frames(samples, options.speech.threshold)
            windows = speech_windows(samples, options.speech, _LONG_FORM_SECONDS, quiet)
            if language is None:
                # As on faster-whisper's own path: the language of the first 30 s of speech.
                heard = windows[0].audio(samples) if windows else samples[:0]
                language = str(self._model.detect_language(audio=heard)[0]) if heard.size else "en"
        except RuntimeError as exc:
            raise EngineError(f"{self._name} failed: {exc}") from exc
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task=options.task, language=language
        )
        decoder = LongFormDecoder(
            self._model,
            tokenizer,
            quiet,
            prompt=options.prompt,
            temperature=options.temperature,
            batch_size=self._batch_size,
        )
        return language, self._checked(decoder.segments(samples, windows, words))

    def _checked(self, found: Iterator[Any]) -> Iterator[Any]:
        try:
            for s in found:
                if s.text.strip() and not (s.no_speech_prob > 0.6 and s.avg_logprob < -0.7):
                    yield s
        except RuntimeError as exc:
            raise EngineError(f"{self._name} failed: {exc}") from exc


def _words(raw: list[Any] | None, lower: float, upper: float) -> list[Word]:
    out: list[Word] = []
    last = lower
    for w in raw or []:
        start = min(max(float(w.start), last), upper)
        end = min(max(float(w.end), start), upper)
        if w.word.strip():
            out.append(Word(start=start, end=end, text=w.word.strip(), probability=float(w.probability)))
            last = start
    return out


def build_whisper_engines(
    data_dir: Path,
    default: str = "base",
    *,
    device: str = "cpu",
    compute_type: str = "int8",
    batch_size: int = 4,
    long_form: bool = True,
) -> list[WhisperEngine]:
    """The bundled models, ``default`` first (``base`` or ``tiny-en``, with or without the
    ``whisper-`` prefix); nothing is assembled or loaded until ``load()``. ``device="cuda"`` (with
    e.g. ``compute_type="float16"``) uses a GPU when the operator configures one. ``batch_size``
    and ``long_form`` are :class:`WhisperEngine`'s."""
    models_dir = data_dir / "models"
    base = WhisperEngine(
        "whisper-base",
        models_dir / "whisper-base",
        english_only=False,
        device=device,
        compute_type=compute_type,
        prepare=lambda: assemble_whisper_base(models_dir),
        batch_size=batch_size,
        long_form=long_form,
    )
    tiny = WhisperEngine(
        "whisper-tiny-en",
        tiny_en_path(),
        english_only=True,
        device=device,
        compute_type=compute_type,
        batch_size=batch_size,
        long_form=long_form,
    )
    wanted = default.removeprefix("whisper-")
    if wanted not in ("base", "tiny-en"):
        raise ValueError(f"unknown whisper model {default!r}; choose base or tiny-en")
    return [base, tiny] if wanted == "base" else [tiny, base]
