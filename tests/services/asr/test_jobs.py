"""The transcription job kind on the real Whisper model: a decode that fails releases the price, an
attempt given up stops its decode, and (across real processes) a worker killed mid-transcription
leaves the job to another worker, which finishes it and charges it once."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from openfish.audio.decode import decode_audio
from openfish.audio.encode import encode_complete
from openfish.engines.base import EngineError
from openfish.engines.registry import EngineRegistry
from openfish.jobs.kinds import Progress
from openfish.services.asr.jobs import INPUT_AREA
from openfish.store.models import LedgerEntry
from tests.audio_checks import word_error_rate
from tests.conftest import Harness
from tests.processes import TOKEN_RE, auth, balance_and_ledger_sum, kinds_for, processes, query
from tests.services.asr.gated import LONG_SENTENCES, GatedEngine, long_speech
from tests.services.asr.test_transcription import BreaksAfterFirst

JOBS = "/api/open/v1/speech/transcriptions/jobs"
MODEL = "whisper-tiny-en"


async def _gated(
    wrapper: type[GatedEngine], engines: EngineRegistry, harness_factory: Callable[..., Any], **settings: Any
) -> tuple[Harness, GatedEngine]:
    inner = engines.transcriber(MODEL)
    assert inner is not None
    engine = wrapper(inner)
    only = EngineRegistry()
    only.register_transcriber(engine)
    harness: Harness = await harness_factory(engines=only, **settings)
    return harness, engine


async def test_a_decode_that_fails_fails_the_job_and_releases_its_price(
    engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> None:
    harness, engine = await _gated(BreaksAfterFirst, engines, harness_factory)
    engine.gate.set()
    caller = await harness.new_caller()
    kind = harness.services.transcription_jobs
    job = await kind.submit(caller.account_id, long_speech(), language="en", words=False, model=MODEL)
    assert await harness.balance(caller.account_id) == 1000 - job.credits
    async with asyncio.timeout(60):
        while True:
            done = await harness.services.jobs.get(caller.account_id, kind, job.id)
            if done.status not in ("queued", "processing"):
                break
            await asyncio.sleep(0.1)
    assert done.status == "failed"
    assert done.error is not None
    assert "the decoder broke" in done.error
    assert done.attempt == 1  # an engine failure is not retried
    assert await harness.balance(caller.account_id) == 1000
    async with harness.services.db.session() as session:
        kinds = await session.scalars(
            select(LedgerEntry.kind).where(LedgerEntry.reference == f"job:{job.id}")
        )
        assert sorted(kinds) == ["hold", "release"]
    assert list(harness.services.blobs.list(INPUT_AREA)) == []


async def test_an_attempt_given_up_stops_its_decode(
    engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> None:
    harness, engine = await _gated(GatedEngine, engines, harness_factory, jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    kind = harness.services.transcription_jobs
    job = await kind.submit(caller.account_id, long_speech(), language="en", words=False, model=MODEL)
    progress = Progress()
    attempt = asyncio.create_task(kind.run(job, progress))
    try:
        async with asyncio.timeout(60):
            while True:
                if engine.handed:
                    break
                await asyncio.sleep(0.05)
        assert 0 < progress.percent < 99
        # What the worker does when it stops or loses the job's lease.
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
    finally:
        engine.gate.set()
    assert await asyncio.to_thread(engine.finished.wait, 30)
    # The decode ended at its next segment instead of running to the end of the audio.
    assert not engine.returned
    assert engine.raised is not None
    assert not isinstance(engine.raised, EngineError)
    assert len(engine.handed) == 2


def long_recording(repeats: int = 3) -> tuple[bytes, float]:
    """``LONG_SENTENCES`` spoken ``repeats`` times over (minutes of speech): WAV and its length."""
    speech = decode_audio(long_speech())
    samples = np.tile(speech.samples, repeats)
    return encode_complete(samples, "wav", speech.sample_rate), samples.size / speech.sample_rate


def poll(
    client: httpx.Client, token: str, job_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The job once ``done(job)``, polled every 0.2 s (the last state seen after 5 minutes)."""
    deadline = time.monotonic() + 300
    while True:
        response = client.get(f"{JOBS}/{job_id}", headers=auth(token))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.mark.slow
def test_a_worker_killed_mid_transcription_leaves_the_job_to_another_and_it_is_charged_once(
    tmp_path: Path,
) -> None:
    audio, seconds = long_recording()
    credits = math.ceil(seconds)
    lease = {"JOBS__LEASE_SECONDS": "3", "JOBS__EMBEDDED_WORKER": "false"}
    with processes(tmp_path) as procs:
        server = procs.serve(**lease)
        found = TOKEN_RE.search(procs.log_of(server))
        assert found is not None, procs.log_of(server)
        token = found.group(1)
        first = procs.worker(**lease)
        with httpx.Client(base_url=procs.base, timeout=60) as client:
            answer = client.post(
                JOBS,
                headers=auth(token),
                files={"file": ("long.wav", audio, "audio/wav")},
                data={"language": "en", "model": "whisper-base"},
            )
            assert answer.status_code == 202, answer.text
            job_id: str = answer.json()["id"]
            job = poll(
                client,
                token,
                job_id,
                lambda j: j["progress"] > 0 or j["status"] not in ("queued", "processing"),
            )
            # Part of the audio is transcribed, not all of it: the worker dies mid-transcription.
            assert (job["status"], job["attempt"]) == ("processing", 1), job
            assert 0 < job["progress"] < 100, job
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            assert kinds_for(procs.database, f"job:{job_id}") == {"hold": 1}

            second = procs.worker(**lease)
            job = poll(client, token, job_id, lambda j: j["status"] not in ("queued", "processing"))
            assert (job["status"], job["attempt"], job["progress"]) == ("succeeded", 2, 100), (
                job,
                procs.log_of(second),
            )
            assert job["creditsUsed"] == job["transcript"]["credits_used"] == credits
            spoken = " ".join(LONG_SENTENCES * 3)
            assert word_error_rate(spoken, job["transcript"]["text"]) < 0.25, job["transcript"]["text"]
        procs.terminate(second)
        procs.terminate(server)
        procs.assert_no_tracebacks()

    reference = f"job:{job_id}"
    assert kinds_for(procs.database, reference) == {"hold": 1, "capture": 1}
    capture = query(procs.database, "SELECT credits_used FROM ledger_entries WHERE kind = 'capture'")
    assert capture == [(credits,)]
    account = str(query(procs.database, "SELECT account_id FROM jobs WHERE id = :id", id=job_id)[0][0])
    balance, ledger = balance_and_ledger_sum(procs.database, account)
    assert balance == ledger
    blobs = procs.data_dir / "blobs"
    assert not list((blobs / INPUT_AREA).glob(f"{job_id}*"))  # the kept upload is gone
    assert sorted(path.name for path in (blobs / "transcripts").iterdir()) == [
        f"{job_id}.{fmt}" for fmt in ("json", "srt", "vtt")
    ]
