"""Whisper on recordings longer than one window, with the real bundled models and Piper speech: cut
at pauses, decoded in batches, seams whole, timestamps in seconds of the recording, repetitive speech
neither slow nor drifted, segments handed on in order."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from openfish.audio.resample import resample
from openfish.engines.base import Audio, Segment, SpeechFilter, SynthesisOptions, Transcript
from openfish.engines.piper import PiperEngine
from openfish.engines.whisper import WhisperEngine, build_whisper_engines
from openfish.engines.whisper_windows import Window, quiet_frames, speech_windows
from tests.engines.test_whisper import wer
from tests.prose import PROSE_SENTENCES

RATE = 22_050
GAP = np.zeros(int(0.35 * RATE), np.float32)
#: One sentence of ~40 s with no full stop: no window can hold it, so a cut must fall inside it.
#: Each clause names things no other clause does (two per clause), so a clause heard twice or not
#: at all shows.
RUN_ON = (
    "The farmer fed the goats and the baker sold warm bread, the sailor mended his nets and the "
    "painter hung a picture, the teacher graded the papers and the doctor visited the village, "
    "the miller ground the wheat and the weaver wove a red blanket, the pilot checked the engines "
    "and the gardener planted roses, the singer practised her songs and the carpenter built a "
    "wooden chair, the fisherman caught three trout and the potter shaped a tall vase."
)
CLAUSE_WORDS = (
    "goats", "bread", "nets", "picture", "papers", "village", "wheat", "blanket",
    "engines", "roses", "songs", "chair", "trout", "vase",
)  # fmt: skip
ORDINARY = PROSE_SENTENCES[:26]
REPEATS = 28
#: Piper without its random variation: the same audio, so the same transcript, on every run.
STEADY = SynthesisOptions(voice="en_US-joe-medium", noise_scale=0.0, noise_w=0.0)
NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"} | {
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


@dataclass(frozen=True)
class Speech:
    """Piper speech and where (seconds) each of its sentences is."""

    audio: Audio
    texts: tuple[str, ...]
    spans: tuple[tuple[float, float], ...]

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE


def _speak(piper: PiperEngine, texts: tuple[str, ...], pauses: dict[int, float] | None = None) -> Speech:
    parts: list[Audio] = []
    spans: list[tuple[float, float]] = []
    at = 0
    for i, text in enumerate(texts):
        spoken = np.concatenate(list(piper.synthesize(text, STEADY)))
        spans.append((at / RATE, (at + spoken.size) / RATE))
        gap = np.zeros(int((pauses or {}).get(i, 0.35) * RATE), np.float32)
        parts += [spoken, gap]
        at += spoken.size + gap.size
    return Speech(np.concatenate(parts).astype(np.float32), texts, tuple(spans))


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    engine = PiperEngine.bundled()
    engine.load()
    return engine


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WhisperEngine]:
    """Both models, loaded once; batches of two so that a few batches make up a recording."""
    built = {e.name: e for e in build_whisper_engines(tmp_path_factory.mktemp("whisper"), batch_size=2)}
    for engine in built.values():
        engine.load()
    return built


@pytest.fixture(scope="module")
def run_on(piper: PiperEngine) -> Speech:
    """Two ordinary sentences, the run-on one, then two more after a 4 s silence."""
    return _speak(piper, (ORDINARY[0], ORDINARY[1], RUN_ON, ORDINARY[2], ORDINARY[3]), {2: 4.0})


@pytest.fixture(scope="module")
def ordinary(piper: PiperEngine) -> Speech:
    return _speak(piper, ORDINARY)


@pytest.fixture(scope="module")
def repetitive(piper: PiperEngine) -> Speech:
    texts = tuple(f"This is sentence number {n} of a long story, told slowly." for n in range(1, REPEATS + 1))
    return _speak(piper, texts)


def _normal(text: str) -> str:
    """Numbers as digits, "No." as "number" (Whisper writes either)."""
    text = re.sub(r"\bno\.", "number", text.lower())
    return " ".join(NUMBER_WORDS.get(w, w) for w in re.sub(r"[^\w\s']", " ", text).split())


def _check_times(result: Transcript, duration: float) -> None:
    last = 0.0
    for segment in result.segments:
        assert last <= segment.start <= segment.end <= duration, segment
        last = segment.start
        for word in segment.words or []:
            assert segment.start <= word.start <= word.end <= segment.end, (word, segment)


def test_a_window_maps_its_times_back_across_the_silence_left_out() -> None:
    window = Window(((16_000, 48_000), (80_000, 96_000)))  # 1-3 s, then 5-6 s of the recording
    assert window.seconds == 3.0
    assert window.time(0.5) == 1.5
    assert window.time(2.5) == 5.5  # past the first span: in the second, after the silence
    assert window.time(2.0, anchor=1.99) == 3.0  # an end on the seam stays in the earlier span
    assert window.time(2.2, anchor=1.9) == 3.0  # a word is kept inside the span of its middle
    assert window.time(9.0) == 6.0
    rest = window.after(1.5)
    assert rest == Window(((40_000, 48_000), (80_000, 96_000)))
    assert window.after(3.0) is None
    quiet = np.ones(96_000 // 512 + 1, dtype=np.bool_)
    quiet[40_000 // 512 : 48_000 // 512] = False  # speech at 2.5-3 s, in the first span
    quiet[64_000 // 512 : 90_000 // 512] = False  # and at 4-5.6 s: partly in the silence left out
    assert window.speech_seconds(quiet, 0.0, 3.0) == pytest.approx(0.5 + 0.6, abs=0.07)
    assert window.speech_seconds(quiet, 0.0, 1.4) == 0.0
    assert window.pause_after(quiet, 1.6, 1.0) == pytest.approx(2.0, abs=0.04)  # from 3 s on, quiet
    assert window.pause_after(quiet, 2.1, 0.3) == 2.1  # no pause that soon: where it was


def test_a_sentence_spoken_across_a_cut_appears_exactly_once(
    engines: dict[str, WhisperEngine], run_on: Speech
) -> None:
    samples = resample(run_on.audio, RATE, 16_000)
    windows = speech_windows(samples, SpeechFilter(), 26, quiet_frames(samples, 0.5))
    start, end = run_on.spans[2]
    cuts = [w.spans[-1][1] / 16_000 for w in windows[:-1]]
    assert any(start < cut < end for cut in cuts), (cuts, run_on.spans)  # the test means what it says
    for name in ("whisper-base", "whisper-tiny-en"):
        result = engines[name].transcribe(run_on.audio, RATE, language="en", words=True)
        heard = [w for w in _normal(result.text).split() if w in CLAUSE_WORDS]
        # Each clause word once, in order; one may be misheard (a clause lost at the seam is two).
        assert heard == [w for w in CLAUSE_WORDS if w in heard], (name, result.text)
        assert len(heard) >= len(CLAUSE_WORDS) - 1, (name, result.text)
        assert wer(" ".join(run_on.texts), result.text) < 0.15, (name, result.text)
        _check_times(result, run_on.seconds)


def test_timestamps_are_seconds_of_the_recording_across_cuts_and_silence(
    engines: dict[str, WhisperEngine], run_on: Speech
) -> None:
    """Each sentence's words are found where it was spoken, also after the 4 s silence the VAD
    leaves out of the window (so window time and recording time differ there)."""
    result = engines["whisper-base"].transcribe(run_on.audio, RATE, language="en", words=True)
    _check_times(result, run_on.seconds)
    words = [w for s in result.segments for w in s.words or []]
    # An early and a late word of each sentence.
    markers = (
        ("train", "exit"), ("bakery", "day"), ("farmer", "vase"), ("museum", "drew"), ("weekend", "blue")
    )  # fmt: skip
    for (start, end), pair in zip(run_on.spans, markers, strict=True):
        for marker in pair:
            found = [w for w in words if _normal(w.text) == marker]
            assert any(start - 0.5 <= w.start and w.end <= end + 0.5 for w in found), (marker, result.text)


def test_repetitive_speech_is_heard_in_full_in_order_and_where_it_was_said(
    engines: dict[str, WhisperEngine], repetitive: Speech
) -> None:
    result = engines["whisper-base"].transcribe(repetitive.audio, RATE, language="en", words=False)
    assert wer(_normal(" ".join(repetitive.texts)), _normal(result.text)) < 0.05, result.text
    heard = [int(n) for n in re.findall(r"number (\d+)", _normal(result.text))]
    assert heard == list(range(1, REPEATS + 1)), result.text  # nothing missing, repeated or made up
    for segment in result.segments:
        for n in re.findall(r"number (\d+)", _normal(segment.text)):
            start, end = repetitive.spans[int(n) - 1]
            assert segment.start - 0.5 <= start, (n, segment)
            assert end <= segment.end + 0.5, (n, segment)
    _check_times(result, repetitive.seconds)


def test_the_same_sentence_said_three_times_before_a_long_silence_is_heard_three_times(
    engines: dict[str, WhisperEngine], piper: PiperEngine
) -> None:
    # Longer than one window only through its trailing silence: the case that once came back as one
    # cue over all three sayings.
    said = _speak(piper, (ORDINARY[1],) * 3, {0: 2.0, 1: 2.0})
    audio = np.concatenate([said.audio, np.zeros(int(70 * RATE) - said.audio.size, np.float32)])
    result = engines["whisper-base"].transcribe(audio, RATE, language="en", words=False)
    assert len(result.segments) == 3, result.segments
    for segment, (start, end) in zip(result.segments, said.spans, strict=True):
        assert wer(_normal(ORDINARY[1]), _normal(segment.text)) < 0.2, segment
        assert segment.start - 0.5 <= start, (segment, start)
        assert end <= segment.end + 0.5, (segment, end)
    _check_times(result, audio.size / RATE)


def test_repetitive_speech_costs_about_what_other_speech_does(
    engines: dict[str, WhisperEngine], ordinary: Speech, repetitive: Speech
) -> None:
    """Seconds of decoding per second of audio, best of two runs each, interleaved."""
    engine = engines["whisper-tiny-en"]
    best = {"ordinary": np.inf, "repetitive": np.inf}
    for _ in range(2):
        for label, speech in (("ordinary", ordinary), ("repetitive", repetitive)):
            began = time.perf_counter()
            result = engine.transcribe(speech.audio, RATE, language="en", words=False)
            best[label] = min(best[label], (time.perf_counter() - began) / speech.seconds)
            assert wer(_normal(" ".join(speech.texts)), _normal(result.text)) < 0.1, result.text
    assert best["repetitive"] < 1.5 * best["ordinary"], best


def test_segments_are_handed_on_in_order_batch_by_batch(
    engines: dict[str, WhisperEngine], ordinary: Speech
) -> None:
    """In recording order, the same as the transcript's; the first long before the decode ends; and
    what the listener raises stops the decode."""
    engine = engines["whisper-tiny-en"]
    handed: list[tuple[float, Segment]] = []
    began = time.perf_counter()
    result = engine.transcribe(
        ordinary.audio,
        RATE,
        language="en",
        words=False,
        on_segment=lambda s: handed.append((time.perf_counter(), s)),
    )
    took = time.perf_counter() - began
    assert [s for _, s in handed] == result.segments
    assert [s.start for _, s in handed] == sorted(s.start for _, s in handed)
    assert handed[0][0] - began < 0.6 * took, (handed[0][0] - began, took)

    class Stop(Exception):
        pass

    def leave(segment: Segment) -> None:
        raise Stop

    began = time.perf_counter()
    with pytest.raises(Stop):
        engine.transcribe(ordinary.audio, RATE, language="en", words=False, on_segment=leave)
    assert time.perf_counter() - began < 0.6 * took


def test_short_audio_still_transcribes_the_way_it_did(
    engines: dict[str, WhisperEngine], ordinary: Speech, tmp_path: Path
) -> None:
    """Audio of one window takes faster-whisper's own path: same text with long_form off."""
    clip = ordinary.audio[: int(ordinary.spans[3][1] * RATE) + RATE // 4]
    assert clip.size / RATE < 30
    plain = build_whisper_engines(tmp_path, default="tiny-en", long_form=False)[0]
    plain.load()
    expected = plain.transcribe(clip, RATE, language="en", words=False)
    assert engines["whisper-tiny-en"].transcribe(clip, RATE, language="en", words=False) == expected
