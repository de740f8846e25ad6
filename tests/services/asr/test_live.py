"""Realtime ASR on the real VAD and Whisper models, fed in 100 ms chunks like a live client."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfish.audio.decode import decode_audio
from openfish.audio.resample import resample
from openfish.config import RealtimeSettings
from openfish.engines.base import Audio, EngineError, TranscriptionEngine, VadEngine
from openfish.engines.registry import EngineRegistry
from openfish.engines.whisper import WhisperEngine
from openfish.services.asr.live import (
    FinalTranscript,
    LiveEvent,
    LiveTranscriber,
    PartialBudget,
    PartialTranscript,
)
from openfish.services.asr.live_decodes import MAX_PENDING_DECODES
from openfish.services.runtime.workers import WorkerPool
from tests.audio_checks import word_error_rate
from tests.voice_clips import espeak_wav

RATE = LiveTranscriber.SAMPLE_RATE
CHUNK = RATE // 10
#: Both models hear these espeak-ng sentences without error; the bound leaves room for changes.
FIRST = "Please send the report to my office before noon."
SECOND = "Could you read the last paragraph once more, slowly please?"
MAX_WER = 0.35


def speech(text: str) -> Audio:
    decoded = decode_audio(espeak_wav(text, "en-us", 50))
    return resample(decoded.samples, decoded.sample_rate, RATE)


def silence(seconds: float) -> Audio:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(workers=2, name="test-live-asr")
    workers.start()
    yield workers
    workers.stop()


@pytest.fixture
def vad(engines: EngineRegistry) -> VadEngine:
    assert engines.vad is not None
    return engines.vad


def tiny(engines: EngineRegistry) -> TranscriptionEngine:
    engine = engines.transcriber("whisper-tiny-en")
    assert engine is not None
    return engine


class Recorder:
    """Collects events as ``emit`` receives them."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []

    async def __call__(self, event: LiveEvent) -> None:
        self.events.append(event)

    @property
    def finals(self) -> list[FinalTranscript]:
        return [e for e in self.events if isinstance(e, FinalTranscript)]


def transcriber(
    engine: TranscriptionEngine, vad: VadEngine, pool: WorkerPool, recorder: Recorder, **settings: Any
) -> LiveTranscriber:
    return LiveTranscriber(
        engine, vad, pool, RealtimeSettings(**settings), recorder, language="en", words=True
    )


async def feed_live(live: LiveTranscriber, audio: Audio) -> None:
    for start in range(0, audio.size, CHUNK):
        await live.feed(audio[start : start + CHUNK])


async def keep_talking(live: LiveTranscriber, seconds: float = 20) -> None:
    """Feed speech, pausing between sentences so background decodes get to run."""
    while live.received_seconds < seconds:
        await feed_live(live, speech(FIRST))
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("model", ["whisper-tiny-en", "whisper-base"])
async def test_two_sentences_give_two_finals_and_a_partial(
    model: str, engines: EngineRegistry, vad: VadEngine, pool: WorkerPool
) -> None:
    engine = engines.transcriber(model)
    assert engine is not None
    first, second = speech(FIRST), speech(SECOND)
    assert second.size / RATE >= 2.5
    clip = np.concatenate([silence(0.5), first, silence(1.2), second, silence(0.8)])
    recorder = Recorder()
    live = transcriber(engine, vad, pool, recorder)
    await feed_live(live, clip)
    await live.finish()
    assert live.received_seconds == pytest.approx(clip.size / RATE)

    finals = recorder.finals
    assert [word_error_rate(s, f.text) < MAX_WER for s, f in zip((FIRST, SECOND), finals, strict=True)] == [
        True,
        True,
    ], [f.text for f in finals]
    duration = clip.size / RATE
    assert 0 <= finals[0].start < finals[0].end <= finals[1].start < finals[1].end <= duration
    assert finals[0].start == pytest.approx(0.5, abs=0.3)
    assert finals[1].end == pytest.approx(duration - 0.8, abs=0.3)
    for final in finals:
        assert final.language == "en"
        assert final.text == final.text.strip()
        assert final.words
        times = [t for w in final.words for t in (w.start, w.end)]
        assert times == sorted(times)
        assert final.start <= times[0]
        assert times[-1] <= final.end
    # Partials come while an utterance is open, so each precedes that utterance's final.
    partials = [e for e in recorder.events if isinstance(e, PartialTranscript)]
    assert partials
    assert all(p.text for p in partials)
    assert {p.start for p in partials} <= {f.start for f in finals}
    for final in finals:
        last = max(i for i, e in enumerate(recorder.events) if e.start == final.start)
        assert recorder.events[last] is final


async def test_silence_and_faint_noise_give_nothing(
    engines: EngineRegistry, vad: VadEngine, pool: WorkerPool
) -> None:
    noise = (np.random.default_rng(1).standard_normal(RATE * 2) * 0.003).astype(np.float32)
    recorder = Recorder()
    live = transcriber(tiny(engines), vad, pool, recorder)
    await feed_live(live, np.concatenate([silence(2), noise, silence(1)]))
    await live.finish()
    assert recorder.events == []


async def test_aclose_emits_nothing_more(engines: EngineRegistry, vad: VadEngine, pool: WorkerPool) -> None:
    recorder = Recorder()
    live = transcriber(tiny(engines), vad, pool, recorder)
    # The utterance closes during the silence, so its decode is pending when the stream is abandoned.
    await feed_live(live, np.concatenate([silence(0.3), speech(FIRST), silence(0.8)]))
    seen = len(recorder.events)
    await live.aclose()
    await asyncio.sleep(1.0)  # longer than a tiny.en decode: a leaked event would have arrived
    await feed_live(live, speech(SECOND))  # ignored once closed
    await live.finish()
    await live.aclose()
    assert len(recorder.events) == seen
    assert recorder.finals == []


async def test_long_speech_is_cut_at_max_utterance(
    engines: EngineRegistry, vad: VadEngine, pool: WorkerPool
) -> None:
    recorder = Recorder()
    live = transcriber(tiny(engines), vad, pool, recorder, max_utterance_seconds=2)
    await feed_live(live, np.concatenate([silence(0.3), speech(SECOND), silence(0.8)]))
    await live.finish()
    finals = recorder.finals
    assert len(finals) >= 2, finals
    for earlier, later in itertools.pairwise(finals):
        assert earlier.end <= later.start
    assert all(f.end - f.start <= 2.0 for f in finals)
    heard = " ".join(f.text for f in finals)
    assert word_error_rate(SECOND, heard) < 0.5, heard


async def test_engine_errors_reach_feed_and_finish(vad: VadEngine, pool: WorkerPool, tmp_path: Path) -> None:
    broken = WhisperEngine("whisper-broken", tmp_path / "missing", english_only=True)
    recorder = Recorder()
    # No partials: the only decode is the final that finish() asks for, so finish() must raise.
    live = transcriber(broken, vad, pool, recorder, partial_interval_seconds=60)
    await feed_live(live, np.concatenate([silence(0.3), speech(FIRST)]))
    with pytest.raises(EngineError, match=r"no model\.bin"):
        await live.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        await live.feed(silence(0.1))
    await live.aclose()

    # A failed partial decode surfaces at a later feed, before the stream goes on.
    live = transcriber(broken, vad, pool, recorder, partial_interval_seconds=0.5)
    with pytest.raises(EngineError, match=r"no model\.bin"):
        await keep_talking(live)
    await live.aclose()
    assert recorder.events == []


def trimmed(text: str) -> Audio:
    """Speech without espeak-ng's own leading and trailing silence."""
    audio = speech(text)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1]


async def test_a_short_pause_does_not_split_an_utterance_despite_the_early_final(
    engines: EngineRegistry, vad: VadEngine, pool: WorkerPool
) -> None:
    # 300 ms of silence starts an early final (after ~100 ms) but is shorter than end_silence_ms:
    # that decode must be dropped, and one final must hold both halves.
    recorder = Recorder()
    live = transcriber(tiny(engines), vad, pool, recorder, partial_interval_seconds=30)
    clip = np.concatenate([silence(0.3), trimmed(FIRST), silence(0.25), trimmed(SECOND), silence(0.8)])
    for start in range(0, clip.size, CHUNK):
        await live.feed(clip[start : start + CHUNK])
        await asyncio.sleep(0.02)  # give the early decode time to finish before speech resumes
    await live.finish()
    assert len(recorder.finals) == 1
    assert word_error_rate(f"{FIRST} {SECOND}", recorder.finals[0].text) < MAX_WER


async def test_partials_are_skipped_when_the_budget_is_spent(
    engines: EngineRegistry, vad: VadEngine, pool: WorkerPool
) -> None:
    budget = PartialBudget(limit=1)
    assert await budget.try_acquire()  # another stream's partial is running
    recorder = Recorder()
    live = LiveTranscriber(
        tiny(engines), vad, pool, RealtimeSettings(), recorder, language="en", partials=budget
    )
    await feed_live(live, np.concatenate([silence(0.3), speech(SECOND), silence(0.8)]))
    await live.finish()
    assert [type(e) for e in recorder.events] == [FinalTranscript]
    await budget.release()
    assert await budget.try_acquire()


async def test_a_client_faster_than_the_decoder_is_slowed_down(
    engines: EngineRegistry, vad: VadEngine
) -> None:
    # Many threads, so the pool's own queue does not hold the client back: only feed's wait can.
    wide = WorkerPool(workers=12, name="test-live-asr-wide")
    wide.start()
    recorder = Recorder()
    live = transcriber(tiny(engines), vad, wide, recorder, partial_interval_seconds=30)
    utterance = np.concatenate([trimmed(FIRST), silence(0.8)])
    most = 0
    for _ in range(8):  # ~30 s of audio in big frames, as fast as the socket allows
        await live.feed(utterance)
        most = max(most, live.pending_decodes)
    await live.finish()
    wide.stop()
    assert most <= MAX_PENDING_DECODES + 1  # without the wait in feed all 8 queue up (measured)
    assert len(recorder.finals) == 8
