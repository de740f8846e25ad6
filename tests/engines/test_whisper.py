"""Whisper on the real bundled models: recognising Piper speech, handing segments on as they are
decoded, filtering silence as asked, staying silent."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from openfish.engines.base import (
    Audio,
    DecodeOptions,
    EngineError,
    Segment,
    SpeechFilter,
    SynthesisOptions,
    TranscriptionEngine,
)
from openfish.engines.piper import PiperEngine
from openfish.engines.registry import build_engines
from openfish.engines.whisper import WhisperEngine, build_whisper_engines
from tests.conftest import make_settings

SENTENCES = (
    "The weather was cold and windy this morning.",
    "Please send the report to my office before noon.",
    "We will meet again next Tuesday at the library.",
)
#: Measured WER on this clip is 0.0 for both models; the bounds leave room for library changes.
MAX_WER = {"whisper-base": 0.15, "whisper-tiny-en": 0.25}
TRANSLATE = DecodeOptions(task="translate")


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length, ignoring case and
    punctuation."""

    def norm(text: str) -> list[str]:
        return re.sub(r"[^\w\s']", " ", text.lower()).split()

    ref, hyp = norm(reference), norm(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def test_wer_normalises() -> None:
    assert wer("Hello, World!", "hello world") == 0.0
    assert wer("a b c d", "a x c") == 0.5


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whisper")


@pytest.fixture(scope="module")
def engines(models_dir: Path) -> dict[str, WhisperEngine]:
    """Both models, each loaded once for the module."""
    built = {engine.name: engine for engine in build_whisper_engines(models_dir)}
    for engine in built.values():
        engine.load()
    return built


@pytest.fixture(scope="module")
def speech() -> tuple[Audio, int]:
    """The three sentences spoken by Piper (22050 Hz) with short pauses between them."""
    piper = PiperEngine.bundled()
    pause = np.zeros(piper.sample_rate // 4, dtype=np.float32)
    parts: list[Audio] = []
    for sentence in SENTENCES:
        parts += [*piper.synthesize(sentence, SynthesisOptions(voice="en_US-joe-medium")), pause]
    return np.concatenate(parts), piper.sample_rate


@pytest.mark.parametrize("name", ["whisper-base", "whisper-tiny-en"])
def test_transcribes_speech(engines: dict[str, WhisperEngine], speech: tuple[Audio, int], name: str) -> None:
    audio, rate = speech
    engine = engines[name]
    assert isinstance(engine, TranscriptionEngine)
    result = engine.transcribe(audio, rate, language=None, words=True)
    assert wer(" ".join(SENTENCES), result.text) < MAX_WER[name], result.text
    assert result.language == "en"
    assert result.duration == pytest.approx(audio.size / rate)
    assert result.segments
    last = 0.0
    for segment in result.segments:
        assert last <= segment.start <= segment.end <= result.duration
        last = segment.start
        assert segment.words
        for word in segment.words:
            assert 0.0 <= word.start <= word.end <= result.duration
            assert 0.0 <= word.probability <= 1.0
    plain = engine.transcribe(audio, rate, language="en", words=False)
    assert all(segment.words is None for segment in plain.segments)
    assert wer(" ".join(SENTENCES), plain.text) < MAX_WER[name], plain.text


def test_segments_are_handed_on_in_order_as_decoded(
    engines: dict[str, WhisperEngine], speech: tuple[Audio, int]
) -> None:
    audio, rate = speech
    handed: list[Segment] = []
    result = engines["whisper-tiny-en"].transcribe(
        audio, rate, language=None, words=True, on_segment=handed.append
    )
    assert handed == result.segments
    assert len(handed) >= 2


class Stop(Exception):
    """What a listener that left raises."""


def test_what_the_listener_raises_ends_the_decode_unchanged(
    engines: dict[str, WhisperEngine], speech: tuple[Audio, int]
) -> None:
    audio, rate = speech
    handed: list[Segment] = []

    def leave(segment: Segment) -> None:
        handed.append(segment)
        raise Stop

    with pytest.raises(Stop):
        engines["whisper-tiny-en"].transcribe(audio, rate, language=None, words=False, on_segment=leave)
    assert len(handed) == 1


def test_the_speech_filter_decides_what_is_heard(
    engines: dict[str, WhisperEngine], speech: tuple[Audio, int]
) -> None:
    """A threshold no window reaches leaves nothing to decode; the default hears the speech."""
    audio, rate = speech
    base = engines["whisper-base"]
    deaf = DecodeOptions(speech=SpeechFilter(threshold=1.0))
    assert base.transcribe(audio, rate, language="en", words=False, options=deaf).segments == []
    heard = base.transcribe(audio, rate, language="en", words=False, options=DecodeOptions())
    assert wer(" ".join(SENTENCES), heard.text) < MAX_WER["whisper-base"], heard.text


@pytest.mark.parametrize("name", ["whisper-base", "whisper-tiny-en"])
def test_silence_and_hiss_give_nothing(engines: dict[str, WhisperEngine], name: str) -> None:
    rng = np.random.default_rng(7)
    for audio in (
        np.zeros(3 * 16_000, np.float32),
        (rng.standard_normal(3 * 16_000) * 0.003).astype(np.float32),
    ):
        result = engines[name].transcribe(audio, 16_000, language=None, words=False)
        assert result.text == ""
        assert result.segments == []
        assert result.duration == pytest.approx(3.0)


def test_languages_and_unknown_language(engines: dict[str, WhisperEngine]) -> None:
    base, tiny = engines["whisper-base"], engines["whisper-tiny-en"]
    assert {"en", "de", "ja", "zh"} <= base.languages()
    assert "yue" not in base.languages()
    assert tiny.languages() == frozenset({"en"})
    quiet = np.zeros(16_000, np.float32)
    with pytest.raises(ValueError, match="language"):
        base.transcribe(quiet, 16_000, language="xx", words=False)
    with pytest.raises(ValueError, match="language"):
        tiny.transcribe(quiet, 16_000, language="de", words=False)


def test_only_multilingual_models_translate(engines: dict[str, WhisperEngine]) -> None:
    base, tiny = engines["whisper-base"], engines["whisper-tiny-en"]
    assert base.tasks() == frozenset({"transcribe", "translate"})
    assert tiny.tasks() == frozenset({"transcribe"})
    with pytest.raises(ValueError, match="cannot translate"):
        tiny.transcribe(np.zeros(16_000, np.float32), 16_000, language=None, words=False, options=TRANSLATE)


def test_registration_loads_nothing(tmp_path: Path) -> None:
    registry = build_engines(make_settings(tmp_path))
    names = [engine.name for engine in registry.transcribers()]
    assert names == ["whisper-base", "whisper-tiny-en"]
    assert not any(engine.loaded for engine in registry.transcribers())
    assert not (tmp_path / "data" / "models" / "whisper-base").exists()
    assert registry.transcriber("whisper-base") is registry.transcribers()[0]
    assert registry.transcriber("whisper-large") is None
    assert build_engines(make_settings(tmp_path, asr={"enabled": False})).transcribers() == []


def test_tiny_en_and_missing_model(tmp_path: Path) -> None:
    assert [e.name for e in build_whisper_engines(tmp_path, default="tiny-en")] == [
        "whisper-tiny-en",
        "whisper-base",
    ]
    with pytest.raises(ValueError, match="unknown whisper model"):
        build_whisper_engines(tmp_path, default="large")
    with pytest.raises(EngineError, match=r"no model\.bin"):
        WhisperEngine("nothing", tmp_path, english_only=True).load()
